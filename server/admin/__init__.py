"""The admin API: AWS API Gateway's control-plane operations for API keys, usage plans and usage.

Served under ``/@admin`` on the gateway's listener (see ``docs/admin.md``). Pure parts:
:mod:`~server.admin.paths` (routing), :mod:`~server.admin.shapes` (AWS JSON shapes and route
keys), :mod:`~server.admin.patch` (patch operations), :mod:`~server.admin.csv_import` (AWS's key
file format), :mod:`~server.admin.usage` (GetUsage arithmetic), :mod:`~server.admin.auth`
(SigV4 and bearer tokens). :mod:`~server.admin.service` runs an operation against the registry
and the store; :mod:`~server.admin.http` is the aiohttp adapter; :mod:`~server.admin.commands`
is the ``portway keys|plans|usage`` client.
"""

"""serverless.yml ``provider.logs.restApi`` / ``provider.logs.httpApi``: the API's access log
format (docs/operations.md). ``true`` turns logging on with the Framework's default format
(Serverless Framework v3, lib/plugins/aws/package/compile/events: the REST stage's and the HTTP
API's default ``format``); ``{format: ...}`` sets one; ``accessLogging: false`` (REST) turns the
access log off. WebSocket APIs (``logs.websocket``) keep the console line for now."""

from __future__ import annotations

import dataclasses
from typing import Any

from server.access_format import compile_format
from server.config.errors import Issues, loc_path
from server.config.rules import BuiltApi
from server.config.variables import Resolver

__all__ = ["DEFAULT_HTTP_FORMAT", "DEFAULT_REST_FORMAT", "with_access_log"]

DEFAULT_REST_FORMAT = (
    "requestId: $context.requestId, ip: $context.identity.sourceIp, caller: $context.identity.caller, "
    "user: $context.identity.user, requestTime: $context.requestTime, httpMethod: $context.httpMethod, "
    "resourcePath: $context.resourcePath, status: $context.status, protocol: $context.protocol, "
    "responseLength: $context.responseLength"
)
DEFAULT_HTTP_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","httpMethod":"$context.httpMethod",'
    '"routeKey":"$context.routeKey","status":"$context.status","protocol":"$context.protocol",'
    '"responseLength":"$context.responseLength"}'
)
_DEFAULTS = {"restApi": DEFAULT_REST_FORMAT, "httpApi": DEFAULT_HTTP_FORMAT}


def _format(value: Any, key: str) -> str | None:
    if value is True:
        return _DEFAULTS[key]
    if not isinstance(value, dict) or value.get("accessLogging") is False:
        return None
    text = value.get("format")
    return text if isinstance(text, str) else _DEFAULTS[key]


def with_access_log(r: Resolver, built: BuiltApi, key: str, issues: Issues) -> BuiltApi:
    """``built`` with ``provider.logs.<key>``'s format (``key``: ``restApi`` or ``httpApi``)."""
    text = _format(r.get_deep("provider", "logs", key), key)
    if text is None:
        return built
    try:
        compile_format(text)
    except ValueError as error:
        issues.error(loc_path(("provider", "logs", key, "format")), str(error))
        return built
    return dataclasses.replace(built, api=dataclasses.replace(built.api, access_log_format=text))

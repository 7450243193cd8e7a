"""Cache keys (pure core): the stage, the method (HTTP method and resource path) and the values
of the method's declared cache key parameters, and nothing else: parameters not declared do not
vary the key (aws-contract.md §4).

A key is ``<api id>/<stage>/`` (:func:`stage_prefix`, what a flush drops) plus a SHA-256 of the
rest, so a key's length does not depend on what the client sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl

from server.messages import HttpRequest

__all__ = ["PARAMETER_SOURCES", "cache_key", "parameter_problem", "stage_prefix"]

# method.request.<source>.<name>; multivaluequerystring is the serverless plugin's spelling.
PARAMETER_SOURCES = ("querystring", "multivaluequerystring", "header", "path")
_PREFIX = "method.request."
_ABSENT = "\x00"  # an absent parameter differs from an empty one


def stage_prefix(api_id: str, stage: str) -> str:
    return f"{api_id}/{stage}/"


def parameter_problem(parameter: str) -> str | None:
    """Why ``parameter`` is not a cache key parameter Portway can read, or None."""
    if not parameter.startswith(_PREFIX):
        return f"must start with {_PREFIX!r}"
    source, _, name = parameter[len(_PREFIX) :].partition(".")
    if source not in PARAMETER_SOURCES:
        return f"source must be one of {', '.join(PARAMETER_SOURCES)}"
    if not name:
        return "names no parameter"
    return None


def cache_key(
    api_id: str,
    stage: str,
    method: str,
    resource: str,
    parameters: Sequence[str],
    request: HttpRequest,
    path_parameters: Mapping[str, str] | None,
) -> str:
    parts = [method, resource]
    query: list[tuple[str, str]] | None = None
    for parameter in parameters:
        source, _, name = parameter[len(_PREFIX) :].partition(".")
        values: list[str]
        if source == "path":
            found = (path_parameters or {}).get(name)
            values = [] if found is None else [found]
        elif source == "header":
            lname = name.lower()
            values = [value for key, value in request.headers if key.lower() == lname]
        else:
            if query is None:
                query = parse_qsl(request.query_string, keep_blank_values=True)
            values = [value for key, value in query if key == name]
            if source == "querystring":
                values = values[-1:]  # the single-value view keeps the last, as events do
        parts.append(f"{parameter}={','.join(values) if values else _ABSENT}")
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return stage_prefix(api_id, stage) + digest

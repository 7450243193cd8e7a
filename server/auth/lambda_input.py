"""What a Lambda authorizer is given: its identity sources and its input event (reference §5.1,
§5.2, §1.6); pure (no I/O imports).

Identity sources are written in AWS's syntax for the API kind and parsed once, at load time (the
loaders report a bad one with its location) and again when the authorizer is built:

* REST: ``method.request.header.X``, ``method.request.querystring.Y``, ``stageVariables.Z``,
  ``context.W``;
* HTTP API: ``$request.header.X``, ``$request.querystring.Y``, ``$stageVariables.Z``,
  ``$context.W``;
* WebSocket: ``route.request.header.X``, ``route.request.querystring.Y``, ``stageVariables.Z``,
  ``context.W``.

Header names match case-insensitively, query names case-sensitively. Every source must be present
and non-empty, else the caller gets 401 without the function being invoked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connections.events import ConnectionInfo, connect_event
from server.config.model import ApiKind
from server.events import RequestInfo, http_v2_event, parse_query, rest_v1_event

__all__ = [
    "CONTEXT_VARIABLES",
    "IdentitySource",
    "http_event",
    "identity_values",
    "parse_identity_source",
    "rest_request_event",
    "token_event",
    "websocket_event",
]

JsonDict = dict[str, Any]

_PREFIXES: dict[ApiKind, tuple[tuple[str, str], ...]] = {
    ApiKind.REST: (
        ("method.request.header.", "header"),
        ("method.request.querystring.", "query"),
        ("stageVariables.", "stage"),
        ("context.", "context"),
    ),
    ApiKind.HTTP: (
        ("$request.header.", "header"),
        ("$request.querystring.", "query"),
        ("$stageVariables.", "stage"),
        ("$context.", "context"),
    ),
    ApiKind.WEBSOCKET: (
        ("route.request.header.", "header"),
        ("route.request.querystring.", "query"),
        ("stageVariables.", "stage"),
        ("context.", "context"),
    ),
}

# $context variables an identity source may name (the ones a request has before authorizing).
CONTEXT_VARIABLES: dict[str, Callable[[RequestInfo, str | None], str | None]] = {
    "routeKey": lambda info, _: info.route_key,
    "httpMethod": lambda info, _: info.request.method,
    "path": lambda info, _: info.path,
    "resourcePath": lambda info, _: info.resource,
    "stage": lambda info, _: info.stage,
    "apiId": lambda info, _: info.api_id,
    "accountId": lambda info, _: info.account_id,
    "domainName": lambda info, _: info.request.host,
    "identity.sourceIp": lambda info, _: info.request.source_ip,
    "identity.userAgent": lambda info, _: info.request.header("user-agent"),
    "connectionId": lambda _, connection_id: connection_id,
}


@dataclass(frozen=True, slots=True)
class IdentitySource:
    where: str  # "header" | "query" | "stage" | "context"
    name: str
    text: str  # as written (for events and messages)


def parse_identity_source(text: str, kind: ApiKind) -> IdentitySource:
    """One identity source in the syntax of ``kind``; ValueError says what is wrong."""
    text = text.strip()
    for prefix, where in _PREFIXES[kind]:
        if text.startswith(prefix) and len(text) > len(prefix):
            name = text[len(prefix) :]
            if where == "context" and name not in CONTEXT_VARIABLES:
                known = ", ".join(sorted(CONTEXT_VARIABLES))
                raise ValueError(f"{text!r}: unknown context variable {name!r} (use one of {known})")
            return IdentitySource(where, name.lower() if where == "header" else name, text)
    forms = ", ".join(f"{prefix}NAME" for prefix, _ in _PREFIXES[kind])
    raise ValueError(f"{text!r} is not an identity source of a {kind.value} API (use {forms})")


def _query_value(query_string: str, name: str, http_api: bool) -> str | None:
    found: list[str] = [value for key, value in parse_query(query_string) if key == name]
    if not found:
        return None
    return ",".join(found) if http_api else found[-1]


def _header_value(info: RequestInfo, lower_name: str, http_api: bool) -> str | None:
    found = [value for key, value in info.request.headers if key.lower() == lower_name]
    if not found:
        return None
    return ",".join(found) if http_api else found[-1]


def identity_values(
    sources: Sequence[IdentitySource], info: RequestInfo, kind: ApiKind, connection_id: str | None = None
) -> tuple[str, ...] | None:
    """The value of every source, in order, or None when one is missing or empty (401)."""
    http_api = kind is ApiKind.HTTP
    values: list[str] = []
    for source in sources:
        if source.where == "header":
            value = _header_value(info, source.name, http_api)
        elif source.where == "query":
            value = _query_value(info.request.query_string, source.name, http_api)
        elif source.where == "stage":
            value = info.stage_variables.get(source.name)
        else:
            value = CONTEXT_VARIABLES[source.name](info, connection_id)
        if not value:
            return None
        values.append(value)
    return tuple(values)


def token_event(token: str, method_arn: str) -> JsonDict:
    """REST ``TOKEN`` input: the whole header value (``Bearer ...`` included)."""
    return {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}


def _request_shape(info: RequestInfo, *, http_api_v1: bool) -> JsonDict:
    """The REST proxy event without the body: what REQUEST authorizers receive."""
    event = rest_v1_event(info, http_api_v1=http_api_v1)
    event.pop("version", None)
    event.pop("body", None)
    event.pop("isBase64Encoded", None)
    return event


def rest_request_event(info: RequestInfo, method_arn: str) -> JsonDict:
    """REST ``REQUEST`` input: ``type``, ``methodArn``, then the proxy event's request fields."""
    return {"type": "REQUEST", "methodArn": method_arn, **_request_shape(info, http_api_v1=False)}


def http_event(info: RequestInfo, method_arn: str, identity: Sequence[str], payload_format: str) -> JsonDict:
    """HTTP API input, payload 1.0 (REST REQUEST shape + ``identitySource`` and
    ``authorizationToken``, comma-joined) or 2.0 (``routeArn``, ``identitySource`` as a list,
    then the 2.0 event's fields without the body)."""
    if payload_format == "1.0":
        joined = ",".join(identity)
        return {
            "version": "1.0",
            "type": "REQUEST",
            "methodArn": method_arn,
            "identitySource": joined,
            "authorizationToken": joined,
            **_request_shape(info, http_api_v1=True),
        }
    event = http_v2_event(info)
    event.pop("body", None)
    event.pop("isBase64Encoded", None)
    event.pop("version", None)
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": method_arn,
        "identitySource": list(identity),
        **event,
    }


def websocket_event(info: RequestInfo, method_arn: str, connection_id: str) -> JsonDict:
    """WebSocket ``$connect`` REQUEST input: ``type``, ``methodArn``, then the CONNECT event's
    fields (headers, query, stage variables, its requestContext) without ``isBase64Encoded``."""
    request = info.request
    connection = ConnectionInfo(
        connection_id=connection_id,
        api_id=info.api_id,
        stage=info.stage,
        domain_name=request.host,
        source_ip=request.source_ip,
        connected_at_ms=info.now_ms,
        user_agent=request.header("user-agent"),
        stage_variables=info.stage_variables,
    )
    event = connect_event(
        connection,
        headers=request.headers,
        query_string=request.query_string,
        request_id=info.request_id,
        now_ms=info.now_ms,
    )
    event.pop("isBase64Encoded", None)
    return {"type": "REQUEST", "methodArn": method_arn, **event}

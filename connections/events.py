"""WebSocket Lambda proxy events: CONNECT, MESSAGE and DISCONNECT, shaped like AWS's captures.

Reference: docs/aws-contract.md §1.6. Key order and presence follow events recorded against AWS:

* CONNECT: ``headers``, ``multiValueHeaders`` (casing as sent), then ``queryStringParameters`` and
  ``multiValueQueryStringParameters`` **only when a query string exists**, ``stageVariables`` only
  when the stage has some, ``requestContext``, ``isBase64Encoded``;
* MESSAGE: ``requestContext`` (with ``messageId``), ``body``, ``isBase64Encoded``: no headers;
* DISCONNECT: the small header set AWS sends (``Host``, ``x-api-key``, ``X-Forwarded-For``,
  ``x-restapi``), ``requestContext`` with ``disconnectStatusCode`` and ``disconnectReason``;
  ``x-api-key`` holds the connection's key when it was admitted with one, else ``""``.

A connection admitted with an API key has ``identity.apiKey`` and ``identity.apiKeyId`` (after
``sourceIp`` and ``userAgent``) in all three events.

``requestId`` equals ``extendedRequestId``; ``connectedAt`` and ``requestTimeEpoch`` are epoch ms.

Pure core: imports no I/O library; times come in as arguments.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from server.events import last_and_all, parse_query
from server.ids import clf_time

__all__ = ["ConnectionInfo", "connect_event", "disconnect_event", "error_frame", "message_event"]

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """What every event of one connection shares."""

    connection_id: str
    api_id: str
    stage: str
    domain_name: str  # host:port the client used
    source_ip: str
    connected_at_ms: int
    user_agent: str | None = None
    stage_variables: Mapping[str, str] = field(default_factory=dict)
    authorizer: Mapping[str, Any] | None = None
    # The API key the connection was admitted with (``$connect`` with ``apiKeyRequired``): its
    # value and id go into ``identity`` of every event, as AWS does once a key was used
    # (aws-contract.md §3.2).
    api_key: str | None = None
    api_key_id: str | None = None
    # Fields an authorizer adds to ``identity`` (IAM callers), in every event of the connection.
    identity_extra: Mapping[str, Any] | None = None


def _context(
    conn: ConnectionInfo, *, route_key: str, event_type: str, request_id: str, now_ms: int
) -> JsonDict:
    identity: JsonDict = {"sourceIp": conn.source_ip}
    if conn.user_agent is not None:
        identity["userAgent"] = conn.user_agent
    if conn.api_key_id is not None:
        identity["apiKey"] = conn.api_key
        identity["apiKeyId"] = conn.api_key_id
    if conn.identity_extra:
        identity.update(conn.identity_extra)
    ctx: JsonDict = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": clf_time(now_ms),
        "messageDirection": "IN",
        "stage": conn.stage,
        "connectedAt": conn.connected_at_ms,
        "requestTimeEpoch": now_ms,
        "identity": identity,
        "requestId": request_id,
        "domainName": conn.domain_name,
        "connectionId": conn.connection_id,
        "apiId": conn.api_id,
    }
    if conn.authorizer is not None:
        ctx["authorizer"] = dict(conn.authorizer)
    return ctx


def connect_event(
    conn: ConnectionInfo,
    *,
    headers: Sequence[tuple[str, str]],
    query_string: str,
    request_id: str,
    now_ms: int,
) -> JsonDict:
    single, multi = last_and_all(headers)
    event: JsonDict = {"headers": single, "multiValueHeaders": multi}
    pairs = parse_query(query_string)
    if pairs:
        qsp, mqsp = last_and_all(pairs)
        event["queryStringParameters"] = qsp
        event["multiValueQueryStringParameters"] = mqsp
    if conn.stage_variables:
        event["stageVariables"] = dict(conn.stage_variables)
    event["requestContext"] = _context(
        conn, route_key="$connect", event_type="CONNECT", request_id=request_id, now_ms=now_ms
    )
    event["isBase64Encoded"] = False
    return event


def message_event(
    conn: ConnectionInfo,
    *,
    route_key: str,
    body: str | bytes,
    message_id: str,
    request_id: str,
    now_ms: int,
) -> JsonDict:
    ctx = _context(conn, route_key=route_key, event_type="MESSAGE", request_id=request_id, now_ms=now_ms)
    # messageId sits right after routeKey in AWS's captures.
    ordered: JsonDict = {"routeKey": ctx.pop("routeKey"), "messageId": message_id, **ctx}
    event: JsonDict = {"requestContext": ordered}
    if conn.stage_variables:
        event["stageVariables"] = dict(conn.stage_variables)
    if isinstance(body, bytes):
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True
    else:
        event["body"] = body
        event["isBase64Encoded"] = False
    return event


def disconnect_event(
    conn: ConnectionInfo,
    *,
    status_code: int,
    reason: str,
    request_id: str,
    now_ms: int,
    api_key: str | None = None,
) -> JsonDict:
    if api_key is None:
        api_key = conn.api_key or ""
    headers = {"Host": conn.domain_name, "x-api-key": api_key, "X-Forwarded-For": "", "x-restapi": ""}
    ctx = _context(
        conn, route_key="$disconnect", event_type="DISCONNECT", request_id=request_id, now_ms=now_ms
    )
    ordered: JsonDict = {}
    for key, value in ctx.items():
        ordered[key] = value
        if key == "routeKey":
            ordered["disconnectStatusCode"] = status_code
        elif key == "messageDirection":
            ordered["disconnectReason"] = reason
    event: JsonDict = {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
    }
    if conn.stage_variables:
        event["stageVariables"] = dict(conn.stage_variables)
    event["requestContext"] = ordered
    event["isBase64Encoded"] = False
    return event


def error_frame(message: str, connection_id: str, request_id: str) -> str:
    """AWS's error frame on a WebSocket (aws-contract.md §1.2), e.g. ``Forbidden`` for an unmatched
    route or ``Too Many Requests`` for a throttled message."""
    # AWS's exact spacing (recorded): {"message": "Forbidden", "connectionId":"...", "requestId":"..."}
    return (
        '{"message": '
        + orjson.dumps(message).decode()
        + ', "connectionId":"'
        + connection_id
        + '", "requestId":"'
        + request_id
        + '"}'
    )

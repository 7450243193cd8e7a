"""CONNECT / MESSAGE / DISCONNECT shapes against the key layout of events recorded on AWS
(aws-contract.md §1.6)."""

from __future__ import annotations

from connections.events import ConnectionInfo, connect_event, disconnect_event, message_event

CONN = ConnectionInfo(
    connection_id="BFaT_fALIAMCKug=",
    api_id="asasasas",
    stage="prod",
    domain_name="127.0.0.1:3000",
    source_ip="166.90.225.1",
    connected_at_ms=1731332735513,
)
CONTEXT_KEYS = [
    "routeKey",
    "eventType",
    "extendedRequestId",
    "requestTime",
    "messageDirection",
    "stage",
    "connectedAt",
    "requestTimeEpoch",
    "identity",
    "requestId",
    "domainName",
    "connectionId",
    "apiId",
]


def test_connect_without_query_has_no_query_keys() -> None:
    event = connect_event(
        CONN,
        headers=[("Host", "127.0.0.1:3000"), ("Sec-WebSocket-Version", "13")],
        query_string="",
        request_id="BFHPhFe3IAMF95g=",
        now_ms=1731324924561,
    )
    assert list(event) == ["headers", "multiValueHeaders", "requestContext", "isBase64Encoded"]
    assert event["headers"]["Sec-WebSocket-Version"] == "13"  # casing kept
    assert event["multiValueHeaders"]["Host"] == ["127.0.0.1:3000"]
    ctx = event["requestContext"]
    assert list(ctx) == CONTEXT_KEYS
    assert ctx["routeKey"] == "$connect" and ctx["eventType"] == "CONNECT"
    assert ctx["messageDirection"] == "IN"
    assert ctx["requestId"] == ctx["extendedRequestId"] == "BFHPhFe3IAMF95g="
    assert ctx["requestTime"] == "11/Nov/2024:11:35:24 +0000"
    assert ctx["identity"] == {"sourceIp": "166.90.225.1"}


def test_connect_with_query() -> None:
    event = connect_event(CONN, headers=[], query_string="token=a&room=1&room=2", request_id="x=", now_ms=0)
    assert list(event)[:4] == [
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
    ]
    assert event["queryStringParameters"] == {"token": "a", "room": "2"}
    assert event["multiValueQueryStringParameters"]["room"] == ["1", "2"]


def test_message_has_no_headers_and_message_id_after_route_key() -> None:
    event = message_event(
        CONN,
        route_key="chat",
        body='{"action": "chat", "message": "Hello from client"}',
        message_id="BFaVtfGSIAMCKug=",
        request_id="BFaVtH2HoAMFZEQ=",
        now_ms=1731332746514,
    )
    assert list(event) == ["requestContext", "body", "isBase64Encoded"]
    ctx = event["requestContext"]
    assert list(ctx) == ["routeKey", "messageId", *CONTEXT_KEYS[1:]]
    assert ctx["eventType"] == "MESSAGE" and ctx["connectedAt"] == 1731332735513


def test_binary_message_is_base64() -> None:
    event = message_event(
        CONN, route_key="$default", body=b"\x00\x01", message_id="m", request_id="r", now_ms=0
    )
    assert event["isBase64Encoded"] is True and event["body"] == "AAE="


def test_disconnect_shape() -> None:
    event = disconnect_event(
        CONN,
        status_code=1005,
        reason="Client-side close frame status not set",
        request_id="BFbOeE87IAMF31w=",
        now_ms=1731333109875,
    )
    assert list(event) == ["headers", "multiValueHeaders", "requestContext", "isBase64Encoded"]
    assert list(event["headers"]) == ["Host", "x-api-key", "X-Forwarded-For", "x-restapi"]
    ctx = event["requestContext"]
    assert list(ctx) == [
        "routeKey",
        "disconnectStatusCode",
        "eventType",
        "extendedRequestId",
        "requestTime",
        "messageDirection",
        "disconnectReason",
        *CONTEXT_KEYS[5:],
    ]
    assert ctx["disconnectStatusCode"] == 1005 and ctx["eventType"] == "DISCONNECT"

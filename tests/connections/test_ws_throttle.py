"""Throttling, API keys and quotas for WebSocket APIs, per message (issue #5; aws-contract.md §1, §3).

A real gateway on port 0 and the `websockets` client, on the embedded store and on Redis:
``$connect`` key checks (403) and throttle (429) before the ``$connect`` integration; every
message after route selection passes its route bucket, the account bucket and, for a keyed
connection, its plan bucket and quota; a refused message gets AWS's error frame and the socket stays
open; the flood policy closes with 1008 (``$disconnect`` runs); store outages follow the
``throttleFailure`` policy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestServer
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from connections.websocket import FLOOD_CLOSE_CODE, FLOOD_CLOSE_REASON, WebSocketGateway
from server.app import THROTTLE, WEBSOCKETS, create_app
from server.config.model import (
    ApiConfig,
    ApiKeyConfig,
    ApiKind,
    GatewayConfig,
    PlanStage,
    QuotaSettings,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
    UsagePlanConfig,
    WebSocketSettings,
)
from server.keys.registry import config_key_id
from tests.connections.conftest import python, ws_url
from tests.connections.handlers import ws_handlers
from tests.redis_fixture import RedisServer, free_port

TINY = 0.001  # tokens per second: nothing refills during a test
BASIC = "basicKey0123456789abcdef"
PREMIUM = "premiumKey0123456789abcdef"
FREE = "freeKey0123456789abcdefgh"
ONCE = "onceKey0123456789abcdefgh"
BULK = "bulkKey0123456789abcdefgh"
NO_PLAN = "noPlanKey0123456789abcdef"
DISABLED = "disabledKey0123456789abcdef"
PROD_ONLY = "prodOnlyKey0123456789abcdef"
UNKNOWN = "unknownKey0123456789abcdef"
TOO_MANY = "Too Many Requests"
LIMIT = "Limit Exceeded"
WAIT_S = 5.0

Start = Callable[..., Awaitable[TestServer]]


def limit(burst: int) -> ThrottleSettings:
    return ThrottleSettings(TINY, burst)


def route(key: str, handler: str, *, keyed: bool = False, response: bool = True) -> RouteConfig:
    return RouteConfig(
        method="", path=key, integration=python(handler), route_response=response, api_key_required=keyed
    )


def ws_api(
    *,
    keyed: bool = False,
    throttle: ThrottleSettings | None = None,
    routes: Mapping[str, ThrottleSettings] | None = None,
    settings: WebSocketSettings | None = None,
) -> ApiConfig:
    """The chat API of tests/connections: ``$connect`` (``apiKeyRequired`` if ``keyed``), ``echo``,
    ``whoami``, ``$default``, ``$disconnect``; stage ``dev`` with the given throttles, and ``prod``."""
    return ApiConfig(
        name="chat",
        id="chatapi",
        kind=ApiKind.WEBSOCKET,
        stages=(
            StageConfig("dev", throttle=throttle, method_throttles=MappingProxyType(dict(routes or {}))),
            StageConfig("prod"),
        ),
        routes=(
            route("$connect", "connect", keyed=keyed, response=False),
            route("$disconnect", "disconnect", response=False),
            route("echo", "echo"),
            route("whoami", "whoami"),
            route("$default", "default"),
        ),
        websocket=settings or WebSocketSettings(),
    )


def gateway_config(api: ApiConfig, **extra: Any) -> GatewayConfig:
    plans = (
        UsagePlanConfig(id="basic", name="Basic", stages=(PlanStage("chatapi", "dev"),), throttle=limit(3)),
        UsagePlanConfig(
            id="premium", name="Premium", stages=(PlanStage("chatapi", "dev"),), throttle=limit(6)
        ),
        UsagePlanConfig(
            id="free", name="Free", stages=(PlanStage("chatapi", "dev"),), quota=QuotaSettings(4, "DAY")
        ),
        UsagePlanConfig(
            id="once", name="Once", stages=(PlanStage("chatapi", "dev"),), quota=QuotaSettings(1, "DAY")
        ),
        UsagePlanConfig(
            id="bulk", name="Bulk", stages=(PlanStage("chatapi", "dev"),), throttle=limit(10_000)
        ),
        UsagePlanConfig(id="prodonly", name="Prod only", stages=(PlanStage("chatapi", "prod"),)),
    )
    keys = (
        ApiKeyConfig("basic-client", BASIC, plans=("basic",)),
        ApiKeyConfig("premium-client", PREMIUM, plans=("premium",)),
        ApiKeyConfig("free-client", FREE, plans=("free",)),
        ApiKeyConfig("once-client", ONCE, plans=("once",)),
        ApiKeyConfig("bulk-client", BULK, plans=("bulk",)),
        ApiKeyConfig("no-plan", NO_PLAN),
        ApiKeyConfig("off", DISABLED, enabled=False, plans=("premium",)),
        ApiKeyConfig("prod-client", PROD_ONLY, plans=("prodonly",)),
    )
    return GatewayConfig(apis=(api,), usage_plans=plans, api_keys=keys, **extra)


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """`await start(config, url)` -> a running gateway (port 0); closed after the test."""
    ws_handlers.EVENTS.clear()
    ws_handlers.DISCONNECTED = asyncio.Queue()
    servers: list[TestServer] = []

    async def run(config: GatewayConfig, url: str | None = None) -> TestServer:
        server = TestServer(create_app(config, redis_url=url), port=0)
        await server.start_server()
        servers.append(server)
        return server

    yield run
    for server in servers:
        await server.close()


def calls(route_key: str) -> int:
    """How many times a route's integration ran (the handlers record their events)."""
    return sum(1 for e in ws_handlers.EVENTS if e["requestContext"]["routeKey"] == route_key)


def connect(server: TestServer, key: str | None = None, path: str = "/dev") -> Any:
    headers = {"x-api-key": key} if key is not None else None
    return websockets.connect(ws_url(server, path), additional_headers=headers)


async def recv(ws: ClientConnection) -> str:
    async with asyncio.timeout(WAIT_S):
        frame = await ws.recv()
    assert isinstance(frame, str)
    return frame


async def echoes(ws: ClientConnection, count: int, route_key: str = "echo") -> list[str]:
    """Send ``count`` messages to ``route_key``; what came back for each: ``"ok"`` or the error
    frame's message (checked for AWS's spacing and this connection's id)."""
    for i in range(count):
        await ws.send(json.dumps({"action": route_key, "n": i}))
    found = []
    for _ in range(count):
        found.append(outcome(await recv(ws)))
    return found


def outcome(frame: str) -> str:
    data = json.loads(frame)
    if "message" not in data:
        return "ok"
    assert frame.startswith('{"message": ' + json.dumps(data["message"]) + ', "connectionId":"'), frame
    assert frame.endswith('", "requestId":"' + data["requestId"] + '"}'), frame
    assert list(data) == ["message", "connectionId", "requestId"]
    assert data["connectionId"].endswith("=") and data["requestId"].endswith("=")
    return str(data["message"])


async def refused_handshake(server: TestServer, key: str | None = None, path: str = "/dev") -> Any:
    with pytest.raises(InvalidStatus) as info:
        async with connect(server, key, path):
            pass
    return info.value.response


async def next_disconnect() -> dict[str, Any]:
    assert ws_handlers.DISCONNECTED is not None
    async with asyncio.timeout(WAIT_S):
        return await ws_handlers.DISCONNECTED.get()


def gateway(server: TestServer) -> WebSocketGateway:
    return server.app[WEBSOCKETS]


# -- per message: route and stage buckets ----------------------------------------------------------


async def test_route_bucket_per_message_frames_and_socket_stays_open(
    start: Start, store_url: str | None
) -> None:
    # echo: its own route entry (3); whoami: the stage default, a bucket of its own (2);
    # $disconnect: a bucket that admits nothing, yet it still runs (never throttled).
    routes = {"echo": limit(3), "$connect": limit(10), "$disconnect": limit(0)}
    api = ws_api(throttle=limit(2), routes=routes)
    server = await start(gateway_config(api), store_url)
    async with connect(server) as ws:
        assert await echoes(ws, 5) == ["ok"] * 3 + [TOO_MANY] * 2
        assert await echoes(ws, 3, "whoami") == ["ok", "ok", TOO_MANY]
        assert await echoes(ws, 1) == [TOO_MANY]  # the socket stayed open; echo still refused
    disconnect = await next_disconnect()
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000
    assert calls("echo") == 3  # refused messages never reached the integration
    # Unkeyed connection: no key in the identity, an empty x-api-key header on $disconnect.
    assert "apiKey" not in ws_handlers.EVENTS[0]["requestContext"]["identity"]
    assert disconnect["headers"]["x-api-key"] == ""
    counters = server.app[THROTTLE].admission
    assert counters.limited == 4 and counters is gateway(server).admission


async def test_frame_names_the_connection_and_other_routes_keep_working(
    start: Start, store_url: str | None
) -> None:
    server = await start(gateway_config(ws_api(routes={"echo": limit(1)})), store_url)
    async with connect(server) as ws:
        await ws.send('{"action":"whoami"}')
        connection_id = json.loads(await recv(ws))["connectionId"]
        assert await echoes(ws, 2) == ["ok", TOO_MANY]
        await ws.send('{"action":"echo"}')
        frame = json.loads(await recv(ws))
        assert frame["message"] == TOO_MANY and frame["connectionId"] == connection_id
        assert frame["requestId"] != connection_id
        await ws.send("not json")  # $default: no throttle of its own (the account bucket only)
        assert await recv(ws) == "default:not json"
    assert calls("echo") == 1


async def test_connections_share_the_route_bucket(start: Start, store_url: str | None) -> None:
    server = await start(gateway_config(ws_api(routes={"echo": limit(3)})), store_url)
    async with connect(server) as a, connect(server) as b:
        assert await echoes(a, 2) == ["ok", "ok"]
        assert await echoes(b, 2) == ["ok", TOO_MANY]
        assert await echoes(a, 1) == [TOO_MANY]


async def test_account_bucket_applies_to_messages(start: Start, store_url: str | None) -> None:
    config = gateway_config(ws_api(), account_throttle=limit(4))
    server = await start(config, store_url)
    async with connect(server) as ws:  # $connect takes one token of the account bucket
        assert await echoes(ws, 4) == ["ok"] * 3 + [TOO_MANY]
        await ws.send("plain")
        assert outcome(await recv(ws)) == TOO_MANY
    assert calls("echo") == 3 and calls("$default") == 0


# -- keyed connections: plan buckets, quotas, identity ---------------------------------------------


async def test_premium_and_basic_keys_get_their_own_limits(start: Start, store_url: str | None) -> None:
    server = await start(gateway_config(ws_api(keyed=True)), store_url)
    # The plan bucket is per key and shared by every route: $connect takes one token of it.
    async with connect(server, BASIC) as basic, connect(server, PREMIUM) as premium:
        assert await echoes(basic, 4) == ["ok"] * 2 + [TOO_MANY] * 2
        assert await echoes(premium, 7) == ["ok"] * 5 + [TOO_MANY] * 2
        await basic.send("plain")  # $default too: the key's bucket is empty
        assert outcome(await recv(basic)) == TOO_MANY
    assert calls("echo") == 7 and calls("$default") == 0


async def test_keyed_connection_identity_in_every_event(start: Start, store_url: str | None) -> None:
    server = await start(gateway_config(ws_api(keyed=True)), store_url)
    async with connect(server, PREMIUM) as ws:
        assert await echoes(ws, 1) == ["ok"]
    disconnect = await next_disconnect()
    expected = {"apiKey": PREMIUM, "apiKeyId": config_key_id("premium-client")}
    connect_event, message_event = ws_handlers.EVENTS[0], ws_handlers.EVENTS[1]
    for event in (connect_event, message_event, disconnect):
        identity = event["requestContext"]["identity"]
        assert {k: identity[k] for k in expected} == expected, event["requestContext"]["eventType"]
        assert list(identity)[:1] == ["sourceIp"]
    assert disconnect["headers"]["x-api-key"] == PREMIUM


async def test_quota_gives_the_limit_exceeded_frame(start: Start, store_url: str | None) -> None:
    server = await start(gateway_config(ws_api(keyed=True)), store_url)
    async with connect(server, FREE) as ws:  # 4 a day: $connect is the first
        assert await echoes(ws, 5) == ["ok"] * 3 + [LIMIT] * 2
        await ws.send('{"action":"whoami"}')  # open, still over quota on every route
        assert outcome(await recv(ws)) == LIMIT
    assert calls("echo") == 3
    # The quota counts per key: a new connection with the same key is refused at $connect.
    response = await refused_handshake(server, FREE)
    assert response.status_code == 429
    assert response.body == b'{"message":"Limit Exceeded"}'
    assert response.headers["x-amzn-ErrorType"] == "LimitExceededException"
    assert "Retry-After" not in response.headers
    assert calls("$connect") == 1


# -- $connect: key checks (403) and throttle (429) -------------------------------------------------


async def test_connect_key_checks_refuse_with_403_before_the_integration(
    start: Start, store_url: str | None
) -> None:
    server = await start(gateway_config(ws_api(keyed=True)), store_url)
    for key in (None, "", UNKNOWN, DISABLED, NO_PLAN, PROD_ONLY):
        response = await refused_handshake(server, key)
        assert response.status_code == 403, key
        assert response.body == b'{"message":"Forbidden"}'
        assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    # The key is read from the header only (AWS: $request.header.x-api-key), not the query string.
    response = await refused_handshake(server, None, f"/dev?x-api-key={PREMIUM}")
    assert response.status_code == 403
    # The prod-only key is good on prod; header names are case-insensitive.
    async with websockets.connect(ws_url(server, "/prod"), additional_headers={"X-API-Key": PROD_ONLY}):
        pass
    assert calls("$connect") == 1


async def test_key_ignored_without_api_key_required(start: Start, store_url: str | None) -> None:
    server = await start(gateway_config(ws_api(routes={"echo": limit(2)})), store_url)
    async with connect(server, UNKNOWN) as ws:
        assert await echoes(ws, 3) == ["ok", "ok", TOO_MANY]
    assert "apiKey" not in ws_handlers.EVENTS[0]["requestContext"]["identity"]


async def test_connect_route_throttle_refuses_the_handshake_with_429(
    start: Start, store_url: str | None
) -> None:
    server = await start(gateway_config(ws_api(routes={"$connect": limit(2)})), store_url)
    async with connect(server), connect(server):
        response = await refused_handshake(server)
    assert response.status_code == 429
    assert response.body == b'{"message":"Too Many Requests"}'
    assert response.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert int(response.headers["Retry-After"]) >= 1
    assert calls("$connect") == 2


async def test_keyed_connect_takes_a_plan_token(start: Start, store_url: str | None) -> None:
    server = await start(gateway_config(ws_api(keyed=True)), store_url)
    for _ in range(3):  # basic: 3 tokens
        async with connect(server, BASIC):
            pass
    response = await refused_handshake(server, BASIC)
    assert response.status_code == 429 and response.body == b'{"message":"Too Many Requests"}'
    async with connect(server, ONCE):  # quota 1 a day
        pass
    assert (await refused_handshake(server, ONCE)).body == b'{"message":"Limit Exceeded"}'
    assert calls("$connect") == 4


# -- flood policy -----------------------------------------------------------------------------------


async def test_flood_closes_with_1008_and_runs_disconnect(start: Start, store_url: str | None) -> None:
    settings = WebSocketSettings(flood_refusals=5, flood_window_s=60.0)
    server = await start(gateway_config(ws_api(routes={"echo": limit(1)}, settings=settings)), store_url)
    async with connect(server) as ws:
        for i in range(8):
            await ws.send(json.dumps({"action": "echo", "n": i}))
        frames = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                frames.append(outcome(await recv(ws)))
    assert frames == ["ok"] + [TOO_MANY] * 5  # the fifth refusal's frame, then the close
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (FLOOD_CLOSE_CODE, FLOOD_CLOSE_REASON)
    ctx = (await next_disconnect())["requestContext"]
    assert (ctx["disconnectStatusCode"], ctx["disconnectReason"]) == (1008, "Message rate limit exceeded")
    assert calls("echo") == 1
    assert gateway(server).flood_closes == 1


@pytest.mark.parametrize(
    "settings",
    [WebSocketSettings(flood_refusals=None), WebSocketSettings(flood_refusals=2, flood_window_s=0.0)],
    ids=["never", "outside-window"],
)
async def test_flood_policy_off_or_refusals_outside_the_window(
    start: Start, settings: WebSocketSettings
) -> None:
    server = await start(gateway_config(ws_api(routes={"echo": limit(1)}, settings=settings)))
    async with connect(server) as ws:
        assert await echoes(ws, 30) == ["ok"] + [TOO_MANY] * 29
        await ws.send('{"action":"whoami"}')
        assert outcome(await recv(ws)) == "ok"
    assert gateway(server).flood_closes == 0


async def test_flood_with_concurrent_messages(start: Start) -> None:
    settings = WebSocketSettings(flood_refusals=3, max_inflight=4)
    server = await start(gateway_config(ws_api(routes={"echo": limit(0)}, settings=settings)))
    async with connect(server) as ws:
        for i in range(10):
            await ws.send(json.dumps({"action": "echo", "n": i}))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                assert outcome(await recv(ws)) == TOO_MANY
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert (await next_disconnect())["requestContext"]["disconnectStatusCode"] == 1008
    assert calls("echo") == 0


# -- store outages ---------------------------------------------------------------------------------


async def test_unreachable_store_fail_open_admits(start: Start) -> None:
    # (Unkeyed: with the store unreachable since start-up, the node has no copy of the keys.)
    api = ws_api(routes={"echo": limit(1)})
    server = await start(gateway_config(api), f"redis://127.0.0.1:{free_port()}/0")  # nothing there
    async with connect(server) as ws:
        assert await echoes(ws, 3) == ["ok"] * 3
    assert calls("echo") == 3
    assert server.app[THROTTLE].admission.store_errors >= 4


async def test_unreachable_store_fail_closed_refuses_the_handshake(start: Start) -> None:
    config = gateway_config(ws_api(), throttle_failure="closed")
    server = await start(config, f"redis://127.0.0.1:{free_port()}/0")
    response = await refused_handshake(server)
    assert response.status_code == 429 and response.body == b'{"message":"Too Many Requests"}'
    assert calls("$connect") == 0


@pytest.mark.redis
@pytest.mark.parametrize("failure", ["open", "closed"])
@pytest.mark.parametrize("key", [None, BULK], ids=["unkeyed", "keyed"])
async def test_store_lost_mid_connection(
    start: Start, redis_server: RedisServer, failure: str, key: str | None
) -> None:
    """Redis stops under a live socket: fail open admits, fail closed sends the frame (an outage
    is not a flood: the socket stays open); messages are throttled again once Redis is back."""
    settings = WebSocketSettings(flood_refusals=2)
    api = ws_api(keyed=key is not None, routes={"echo": limit(10_000)}, settings=settings)
    server = await start(gateway_config(api, throttle_failure=failure), redis_server.url)
    admission = server.app[THROTTLE].admission
    async with connect(server, key) as ws:
        assert await echoes(ws, 1) == ["ok"]
        redis_server.stop()
        expected = "ok" if failure == "open" else TOO_MANY
        assert await echoes(ws, 4) == [expected] * 4
        assert admission.store_errors >= 4
        redis_server.start()
        async with asyncio.timeout(15):  # the store reconnects by itself: poll until it decides
            while True:
                errors = admission.store_errors
                if await echoes(ws, 1) == ["ok"] and admission.store_errors == errors:
                    break
                await asyncio.sleep(0.05)
    assert gateway(server).flood_closes == 0
    if failure == "closed":
        assert calls("echo") == 2


async def test_each_connection_gets_its_own_message_bucket(start: Start, store_url: str | None) -> None:
    """``connectionThrottle`` (beyond AWS): a per-connection bucket, checked first and locally;
    a message it refuses consumes nothing shared (the route bucket here has 5)."""
    settings = WebSocketSettings(connection_throttle=limit(2))
    server = await start(gateway_config(ws_api(routes={"echo": limit(5)}, settings=settings)), store_url)
    async with connect(server) as first, connect(server) as second:
        assert await echoes(first, 4) == ["ok", "ok", TOO_MANY, TOO_MANY]
        assert await echoes(second, 4) == ["ok", "ok", TOO_MANY, TOO_MANY]
        async with connect(server) as third:
            # The route bucket (5) gave 4 tokens away: only its last one is left for a third client.
            assert await echoes(third, 2) == ["ok", TOO_MANY]
    assert calls("echo") == 5
    admission = server.app[THROTTLE].admission
    assert admission.limited == 1  # the other refusals were the connections' own, never the store's

"""WebSocket lifecycle with the `websockets` client against a real gateway (aws-contract.md §1)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.config.model import WebSocketSettings
from tests.connections.conftest import GatewayFactory, chat_api, ws_url
from tests.connections.handlers import ws_handlers


async def next_disconnect() -> dict[str, Any]:
    assert ws_handlers.DISCONNECTED is not None
    async with asyncio.timeout(5):
        return await ws_handlers.DISCONNECTED.get()


def _ensure_queue() -> None:
    if ws_handlers.DISCONNECTED is None:
        ws_handlers.DISCONNECTED = asyncio.Queue()


async def test_connect_event_and_two_way_route(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server, "/dev?room=1&room=2")) as ws:
        await ws.send(json.dumps({"action": "echo", "text": "hi"}))
        reply = json.loads(await ws.recv())
        assert reply == {"echo": {"action": "echo", "text": "hi"}, "route": "echo"}
    connect = ws_handlers.EVENTS[0]
    assert connect["requestContext"]["eventType"] == "CONNECT"
    assert connect["queryStringParameters"] == {"room": "2"}
    assert connect["stageVariables"] == {"room": "lobby"}
    assert connect["requestContext"]["domainName"] == f"127.0.0.1:{server.port}"
    message = ws_handlers.EVENTS[1]
    assert "headers" not in message
    assert message["requestContext"]["connectionId"] == connect["requestContext"]["connectionId"]


async def test_default_route_and_non_json(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send("not json")
        assert await ws.recv() == "default:not json"
        await ws.send('{"action":"nothing-matches"}')
        assert await ws.recv() == 'default:{"action":"nothing-matches"}'


async def test_no_default_route_gives_forbidden_frame_and_stays_open(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(with_default=False))
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send('{"action":"unknown"}')
        frame = await ws.recv()
        assert isinstance(frame, str)
        assert frame.startswith('{"message": "Forbidden", "connectionId":"')
        data = json.loads(frame)
        assert data["requestId"].endswith("=") and data["connectionId"].endswith("=")
        await ws.send('{"action":"echo"}')
        assert json.loads(await ws.recv())["route"] == "echo"


async def test_handler_exception_sends_internal_error_frame(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send('{"action":"fail"}')
        frame = await ws.recv()
        assert isinstance(frame, str) and frame.startswith(
            '{"message": "Internal server error", "connectionId":"'
        )
        await ws.send('{"action":"echo"}')  # still open
        assert json.loads(await ws.recv())["route"] == "echo"


async def test_route_without_route_response_is_one_way(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send('{"action":"silent"}')
        await ws.send('{"action":"echo"}')
        assert json.loads(await ws.recv())["route"] == "echo"  # the silent route sent nothing


@pytest.mark.parametrize("status", [401, 403, 301, 501])
async def test_connect_non_2xx_fails_the_handshake_with_that_status(
    ws_gateway: GatewayFactory, status: int
) -> None:
    server = await ws_gateway(chat_api())
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(ws_url(server, f"/dev?deny={status}")):
            pass
    assert info.value.response.status_code == status


async def test_connect_exception_is_502(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(ws_url(server, "/dev?boom=1")):
            pass
    assert info.value.response.status_code == 502


async def test_subprotocol_negotiated_by_connect(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server), subprotocols=["chat.v1", "chat.v2"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v2"


async def test_disconnect_event_with_client_close_code(ws_gateway: GatewayFactory) -> None:
    _ensure_queue()
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server)) as ws:
        await ws.close(code=4000, reason="bye")
    event = await next_disconnect()
    ctx = event["requestContext"]
    assert ctx["eventType"] == "DISCONNECT"
    assert ctx["disconnectStatusCode"] == 4000 and ctx["disconnectReason"] == "bye"
    assert list(event["headers"]) == ["Host", "x-api-key", "X-Forwarded-For", "x-restapi"]


async def test_binary_frame_closes_with_1003(ws_gateway: GatewayFactory) -> None:
    _ensure_queue()
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1003
    assert (await next_disconnect())["requestContext"]["disconnectStatusCode"] == 1003


async def test_binary_frames_allowed_when_configured(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(WebSocketSettings(binary_frames=True)))
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send(b"\x00\x01")
        assert await ws.recv() == "default:AAE="


async def test_message_at_limit_ok_over_limit_closes_1009(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(WebSocketSettings(max_message_bytes=1000)))
    async with websockets.connect(ws_url(server)) as ws:
        payload = "x" * 1000
        await ws.send(payload)
        assert await ws.recv() == "default:" + payload
        await ws.send("x" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_idle_timeout_closes_1001_and_runs_disconnect(ws_gateway: GatewayFactory) -> None:
    _ensure_queue()
    server = await ws_gateway(chat_api(WebSocketSettings(idle_timeout_s=0.3)))
    async with websockets.connect(ws_url(server)) as ws:
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(5):
                await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    ctx = (await next_disconnect())["requestContext"]
    assert ctx["disconnectStatusCode"] == 1001
    assert ctx["disconnectReason"] == "Connection idle timeout exceeded"


async def test_activity_keeps_an_idle_timer_open_until_lifetime(ws_gateway: GatewayFactory) -> None:
    _ensure_queue()
    server = await ws_gateway(chat_api(WebSocketSettings(idle_timeout_s=0.4, max_lifetime_s=1.0)))
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with websockets.connect(ws_url(server)) as ws:
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.send("ping")  # constant activity: only the lifetime limit can close it
                    await ws.recv()
    assert loop.time() - start >= 1.0
    assert (await next_disconnect())["requestContext"]["disconnectReason"] == (
        "Connection maximum duration exceeded"
    )


async def test_timers_can_be_switched_off(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(WebSocketSettings(idle_timeout_s=None, max_lifetime_s=None)))
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send("x")
        assert await ws.recv() == "default:x"


async def test_shutdown_closes_with_1001_and_runs_disconnect(ws_gateway: GatewayFactory) -> None:
    _ensure_queue()
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send("x")
        await ws.recv()
        closing = asyncio.create_task(server.close())
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(5):
                await ws.recv()
        await closing
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert (await next_disconnect())["requestContext"]["disconnectStatusCode"] == 1001


async def test_server_pings_from_the_sweeper(ws_gateway: GatewayFactory) -> None:
    import aiohttp

    server = await ws_gateway(chat_api(WebSocketSettings(ping_interval_s=0.1)))
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(server), autoping=False) as ws:
        async with asyncio.timeout(5):
            msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.PING


def test_send_buffer_is_read_from_any_transport_with_a_buffer_size() -> None:
    """uvloop's transports are not asyncio.WriteTransport subclasses; the limit must still apply."""
    from connections.registry import LocalConnection

    class UvloopLikeTransport:
        def get_write_buffer_size(self) -> int:
            return 12345

    conn = LocalConnection.__new__(LocalConnection)
    conn.transport = UvloopLikeTransport()  # type: ignore[assignment]
    assert conn.buffered() == 12345

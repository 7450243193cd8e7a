"""Hostile WebSocket clients (issue 11 items 6, 12, 13): unmasked frames close with 1002, a ping
flood closes its sender with 1008 while a neighbour's echo keeps working, and ``$disconnect``
carries the close code and reason the client got (not 1006, not aiohttp's internal text)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from connections.core import CONTROL_FLOOD, MESSAGE_TOO_BIG, UNMASKED
from server.app import WEBSOCKETS
from server.config.model import ThrottleSettings, WebSocketSettings
from tests.connections.conftest import GatewayFactory, chat_api, ws_url
from tests.connections.handlers import ws_handlers
from tests.connections.rawws import RawClient, client_frame


async def next_disconnect() -> dict[str, Any]:
    if ws_handlers.DISCONNECTED is None:
        ws_handlers.DISCONNECTED = asyncio.Queue()
    async with asyncio.timeout(10):
        return await ws_handlers.DISCONNECTED.get()


def disconnect_close(event: dict[str, Any]) -> tuple[int, str]:
    ctx = event["requestContext"]
    return ctx["disconnectStatusCode"], ctx["disconnectReason"]


async def test_unmasked_client_frame_closes_1002(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with RawClient(server.port) as raw:
        raw.send(client_frame(0x1, b"masked is fine"))
        opcode, payload = await raw.recv_frame()
        assert (opcode, payload) == (0x1, b"default:masked is fine")
        raw.send(client_frame(0x1, b"unmasked", masked=False))
        assert await raw.recv_close() == UNMASKED
        assert await raw.at_eof()  # failed at once: the server does not wait for a reply
    assert disconnect_close(await next_disconnect()) == UNMASKED


async def test_unmasked_ping_closes_1002(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with RawClient(server.port) as raw:
        raw.send(client_frame(0x9, b"hi", masked=False))
        assert await raw.recv_close() == UNMASKED
    assert disconnect_close(await next_disconnect()) == UNMASKED


@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "fragments"])
async def test_oversized_message_disconnect_carries_what_the_client_got(
    ws_gateway: GatewayFactory, fragmented: bool
) -> None:
    """One frame over the message limit (the frame rules) or fragments adding up to more than
    it (aiohttp's parser): the same 1009 and reason for the client and for $disconnect."""
    server = await ws_gateway(chat_api(WebSocketSettings(max_message_bytes=1000)))
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send(["x" * 500, "x" * 500, "x"] if fragmented else "x" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(5):
                await ws.recv()
    assert info.value.rcvd is not None
    got = (info.value.rcvd.code, info.value.rcvd.reason)
    assert got == MESSAGE_TOO_BIG
    assert disconnect_close(await next_disconnect()) == got


async def test_client_that_never_answers_the_close_still_gets_its_code_reported(
    ws_gateway: GatewayFactory,
) -> None:
    """aiohttp waits for the client's close reply and, without one, records 1006; $disconnect
    must still report the 1009 the client was sent."""
    server = await ws_gateway(chat_api(WebSocketSettings(max_message_bytes=1000)))
    async with RawClient(server.port) as raw:
        # Fragments, so that aiohttp's parser (not the frame rules) finds the message too big.
        raw.send(client_frame(0x1, b"x" * 600, fin=False) + client_frame(0x0, b"x" * 600))
        assert await raw.recv_close() == MESSAGE_TOO_BIG
        # No close reply: the server gives up after its close timeout (5 s) and drops TCP.
        assert disconnect_close(await next_disconnect()) == MESSAGE_TOO_BIG


async def test_invalid_utf8_closes_1007_with_a_public_reason(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with RawClient(server.port) as raw:
        raw.send(client_frame(0x1, b"\xff\xfe"))
        got = await raw.recv_close()
        raw.send(client_frame(0x8, (1007).to_bytes(2, "big")))
    assert got == (1007, "Invalid frame payload data")
    assert disconnect_close(await next_disconnect()) == got


async def _echo_round_trip(ws: Any, text: str) -> float:
    started = time.perf_counter()
    await ws.send(json.dumps({"action": "echo", "text": text}))
    async with asyncio.timeout(5):
        reply = json.loads(await ws.recv())
    assert reply["echo"]["text"] == text
    return time.perf_counter() - started


async def test_ping_flood_closes_1008_and_the_neighbour_keeps_working(
    ws_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    settings = WebSocketSettings(control_frame_throttle=ThrottleSettings(rate=10.0, burst=50))
    server = await ws_gateway(chat_api(settings))
    gateway = server.app[WEBSOCKETS]
    async with websockets.connect(ws_url(server)) as neighbour:
        await _echo_round_trip(neighbour, "before")
        # Within the budget, pings are answered (the client library waits for each pong).
        for _ in range(5):
            async with asyncio.timeout(5):
                await (await neighbour.ping())
        async with RawClient(server.port) as flooder:
            flooder.send(client_frame(0x9, b"p") * 2000)  # bounded: 2,000 pings in one write
            await flooder.drain()
            assert await flooder.recv_close() == CONTROL_FLOOD
            assert await flooder.at_eof()
        assert disconnect_close(await next_disconnect()) == CONTROL_FLOOD
        assert gateway is not None and gateway.control_flood_closes == 1
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.port}/@metrics") as metrics,
        ):
            assert "portway_websocket_control_flood_closes_total 1.0" in await metrics.text()
        for index in range(20):
            await _echo_round_trip(neighbour, f"after {index}")
    # Pings queued before the close are not answered into the closed transport (no error logged).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_control_frame_budget_can_be_switched_off(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(WebSocketSettings(control_frame_throttle=None)))
    async with RawClient(server.port) as raw:
        raw.send(client_frame(0x9, b"p") * 200)
        raw.send(client_frame(0x1, b"still here"))
        pongs = 0
        async with asyncio.timeout(5):
            while True:
                opcode, payload = await raw.recv_frame()
                if opcode == 0xA:
                    pongs += 1
                    continue
                assert (opcode, payload) == (0x1, b"default:still here")
                break
        assert pongs == 200

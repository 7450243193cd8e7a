"""Broadcast fan-out (issue 11 item 10): one slow consumer delays nobody.

Unit level: a member whose send would wait for its buffer to drain gets that send in its own task,
while members with empty buffers get theirs at once. Live: a raw client that never reads (its
buffer filled by @connections posts) beside fast clients; a channel post and a stage broadcast
reach the fast ones promptly and the POST answers at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import websockets

from connections.management import ConnectionManager
from connections.registry import SendStatus
from server.config.model import WebSocketSettings
from tests.connections.conftest import GatewayFactory, chat_api, ws_url
from tests.connections.rawws import RawClient, client_frame


class _Ws:
    closed = False


class _Conn:
    """What _deliver_local uses of a LocalConnection; ``queued`` bytes wait in its buffer and a
    send to it takes ``delay`` seconds (a slow reader's drain)."""

    def __init__(self, name: str, queued: int = 0, delay: float = 0.0) -> None:
        self.name, self.queued, self.delay = name, queued, delay
        self.draining = False
        self.ws = _Ws()
        self.settings = WebSocketSettings()
        self.got: list[tuple[str, float]] = []
        self.sent = asyncio.Event()

    def buffered(self) -> int:
        return self.queued

    async def send_text(self, text: str) -> SendStatus:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.got.append((text, time.monotonic()))
        self.sent.set()
        return SendStatus.OK


class _Registry:
    def __init__(self, conns: list[_Conn]) -> None:
        self.conns = conns

    def local_members(self, api_id: str, stage: str, channel: str | None) -> list[_Conn]:
        return self.conns


async def test_a_slow_member_delays_nobody() -> None:
    slow = _Conn("slow", queued=1000, delay=1.0)
    fast = [_Conn(f"fast{i}") for i in range(50)]
    full = _Conn("full", queued=WebSocketSettings().send_buffer_bytes + 1)
    manager = ConnectionManager(_Registry([fast[0], slow, full, *fast[1:]]))  # type: ignore[arg-type]
    started = time.monotonic()
    delivered = await manager._deliver_local("api", "dev", None, "one")
    assert time.monotonic() - started < 0.5  # did not wait for the slow member
    assert delivered == 51  # 50 fast + the slow one's queued send; the full one is dropped
    assert all(c.got and c.got[0][0] == "one" for c in fast)
    # While its send waits, the slow member is skipped (one waiting send per socket), not queued.
    assert await manager._deliver_local("api", "dev", None, "two") == 50
    async with asyncio.timeout(5):
        await slow.sent.wait()
    await asyncio.sleep(0)  # its task's finally (draining back to False) runs right after
    assert [text for text, _ in slow.got] == ["one"] and not slow.draining and full.got == []


async def _whoami(ws: Any) -> str:
    await ws.send(json.dumps({"action": "whoami"}))
    return str(json.loads(await ws.recv())["connectionId"])


async def test_broadcast_reaches_fast_clients_promptly_beside_a_client_that_never_reads(
    ws_gateway: GatewayFactory,
) -> None:
    settings = WebSocketSettings(send_buffer_bytes=256 * 1024)
    server = await ws_gateway(chat_api(settings))
    base = f"http://127.0.0.1:{server.port}/dev"
    async with aiohttp.ClientSession() as http, RawClient(server.port) as slow:
        slow.send(client_frame(0x1, json.dumps({"action": "whoami"}).encode()))
        slow_id = json.loads((await slow.recv_frame())[1])["connectionId"]
        # Fill the slow client's buffers (kernel and gateway) until the gateway refuses (429).
        chunk = b"x" * 100_000
        statuses: list[int] = []
        for _ in range(400):  # bounded
            async with http.post(f"{base}/@connections/{slow_id}", data=chunk) as r:
                statuses.append(r.status)
            if r.status == 429:
                break
        assert statuses[-1] == 429, statuses[-5:]
        fast = [await websockets.connect(ws_url(server)) for _ in range(5)]
        try:
            for ws in fast:
                await _whoami(ws)
            for ws in fast[:3]:
                cid = await _whoami(ws)
                async with http.post(f"{base}/@connections/{cid}/channels/room") as r:
                    assert r.status == 200
            async with http.post(f"{base}/@connections/{slow_id}/channels/room") as r:
                assert r.status == 200
            for path, receivers in (("@channels/room", fast[:3]), ("@broadcast", fast)):
                started = time.monotonic()
                async with http.post(f"{base}/{path}", data=b"hello all") as r:
                    assert r.status == 200
                    assert (await r.json())["delivered"] == len(receivers)  # the slow one dropped
                for ws in receivers:
                    async with asyncio.timeout(2):
                        assert await ws.recv() == "hello all"
                assert time.monotonic() - started < 0.9, path  # a drain wait would be 1 s
        finally:
            for ws in fast:
                await ws.close()

"""``/@metrics`` for WebSocket APIs: connects, disconnects, messages in/out, @connections calls by
status, handler latency; read from a real gateway with a real client."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.connections.conftest import GatewayFactory, chat_api


async def scrape(
    http: aiohttp.ClientSession, base: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with http.get(f"{base}/@metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_websocket_traffic_and_connections_api_calls(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://127.0.0.1:{server.port}/dev") as ws:
            await ws.send_str(json.dumps({"action": "whoami"}))
            connection_id = json.loads(await ws.receive_str())["connectionId"]
            for n in range(3):
                await ws.send_str(json.dumps({"action": "echo", "n": n}))
                await ws.receive_str()
            async with http.post(f"{base}/dev/@connections/{connection_id}", data=b"pushed") as resp:
                assert resp.status == 200
            assert await ws.receive_str() == "pushed"
            async with http.post(f"{base}/dev/@connections/AAAAAAAAAAAAAAA=", data=b"x") as resp:
                assert resp.status == 410
            found = await scrape(http, base)
            assert found[("portway_websocket_connects_total", ())] == 1
            assert found[("portway_websocket_disconnects_total", ())] == 0
            assert found[("portway_websocket_messages_total", (("direction", "in"),))] == 4
            assert found[("portway_websocket_messages_total", (("direction", "out"),))] == 5
            calls = "portway_connections_api_calls_total"
            assert found[(calls, (("method", "POST"), ("status", "200")))] == 1
            assert found[(calls, (("method", "POST"), ("status", "410")))] == 1
        # The close bookkeeping runs in its own task: poll (bounded) until it counted.
        for _ in range(200):
            found = await scrape(http, base)
            if found[("portway_websocket_disconnects_total", ())] == 1:
                break
            await asyncio.sleep(0.02)
        assert found[("portway_websocket_disconnects_total", ())] == 1
        # Messages of closed connections stay counted.
        assert found[("portway_websocket_messages_total", (("direction", "in"),))] == 4

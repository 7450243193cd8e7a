"""The README's first command serves examples/portway.yaml: the chat example in a real process.

Two ``websockets`` clients join a room, talk and broadcast; then the bundled client
(examples/chat/client.py) runs against the same gateway. The hello APIs answer beside it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import aiohttp
import pytest
import websockets

from tests.server.test_cli import ROOT, get_json, serve

EXAMPLES = ROOT / "examples"
TIMEOUT_S = 10


async def receive(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT_S):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def test_chat_example_rooms_broadcast_and_the_bundled_client() -> None:
    async with serve(EXAMPLES / "portway.yaml") as base:
        url = base.replace("http://", "ws://", 1) + "/dev"
        async with (
            websockets.connect(f"{url}?name=Ada") as ada,
            websockets.connect(f"{url}?name=Bob") as bob,
        ):
            await ada.send(json.dumps({"action": "join", "room": "tea"}))
            assert await receive(ada) == {"event": "joined", "room": "tea", "name": "Ada"}
            await bob.send(json.dumps({"action": "join", "room": "tea"}))
            for ws in (ada, bob):
                assert await receive(ws) == {"event": "joined", "room": "tea", "name": "Bob"}

            await ada.send(json.dumps({"action": "send", "room": "tea", "text": "milk?"}))
            for ws in (ada, bob):
                assert await receive(ws) == {"from": "Ada", "room": "tea", "text": "milk?"}

            await bob.send(json.dumps({"action": "broadcast", "text": "closing time"}))
            for ws in (ada, bob):
                assert await receive(ws) == {"from": "Bob", "broadcast": True, "text": "closing time"}

            await ada.send(json.dumps({"action": "dance"}))  # $default has a route response
            assert (await receive(ada))["message"] == "unknown action"
            await ada.send(json.dumps({"action": "send", "room": "tea"}))  # posted back with boto3
            assert (await receive(ada)) == {"error": "send needs a room and a text (1..4096 characters)"}

            client = await asyncio.create_subprocess_exec(
                sys.executable,
                str(EXAMPLES / "chat" / "client.py"),
                url,
                "Cy",
                "tea",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            assert client.stdout is not None
            try:
                lines = []
                async with asyncio.timeout(TIMEOUT_S):
                    while (line := (await client.stdout.readline()).decode()) and "hello from" not in line:
                        lines.append(line)
                lines.append(line)
                assert [json.loads(text) for text in lines] == [
                    {"event": "joined", "room": "tea", "name": "Cy"},
                    {"from": "Cy", "room": "tea", "text": "hello from Cy"},
                ]
                for ws in (ada, bob):
                    assert await receive(ws) == {"event": "joined", "room": "tea", "name": "Cy"}
                    assert await receive(ws) == {"from": "Cy", "room": "tea", "text": "hello from Cy"}
                client.send_signal(signal.SIGINT)  # Ctrl-C
                async with asyncio.timeout(TIMEOUT_S):
                    assert await client.wait() == 0
            finally:
                if client.returncode is None:
                    client.kill()
                    await client.wait()

        status, body = await get_json(f"{base}/dev/hello?name=Ada")  # the hello APIs, same listener
        assert status == 200 and body["message"] == "Hello, Ada!"
        status, body = await get_json(f"{base}/hello")
        assert status == 200 and body["message"] == "Hello, world!"
        # The keyed route: 403 without the demo key, 200 with it (and the plan's headers).
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/dev/vip") as response:
                assert response.status == 403
                assert await response.json() == {"message": "Forbidden"}
            headers = {"x-api-key": "demoKeyForTheExampleOnly01"}
            async with http.get(f"{base}/dev/vip", headers=headers) as response:
                assert response.status == 200
                assert response.headers["X-RateLimit-Limit"] == "500"


async def test_a_bad_name_fails_the_handshake_with_the_connect_status() -> None:
    async with serve(EXAMPLES / "chat" / "portway.yaml") as base:
        url = base.replace("http://", "ws://", 1) + "/dev?name=" + "x" * 33
        with pytest.raises(websockets.InvalidStatus) as info:
            async with asyncio.timeout(TIMEOUT_S), websockets.connect(url):
                pass
        assert info.value.response.status_code == 400

"""The AWS JS SDK v3 ApiGatewayManagementApiClient against the @connections API, unmodified
(aws-contract.md §1.7).

scripts/test.sh installs the SDK (npm, tests/js/package.json) before running the tests.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import websockets

from tests.connections.conftest import GatewayFactory, chat_api, ws_url

JS = Path(__file__).resolve().parents[1] / "js"


async def test_js_sdk_post_get_delete_and_gone(ws_gateway: GatewayFactory) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (Debian package nodejs)"
    assert (JS / "node_modules" / "@aws-sdk").is_dir(), (
        "run: npm install --prefix tests/js (scripts/test.sh does)"
    )
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server)) as ws:
        await ws.send('{"action":"whoami"}')
        connection_id = json.loads(await ws.recv())["connectionId"]
        proc = await asyncio.create_subprocess_exec(
            node,
            str(JS / "mgmt.mjs"),
            f"http://127.0.0.1:{server.port}/dev",
            connection_id,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            assert await ws.recv() == "from js"
            stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert json.loads(stdout) == {
        "post": 200,
        "get": {"status": 200, "sourceIp": "127.0.0.1", "connectedAt": True},
        "delete": 204,
        "gone": "GoneException",
    }

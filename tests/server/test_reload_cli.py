"""``portway serve --reload`` end to end: a real gateway process, a real WebSocket client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import websockets

from server.config.load import load_config
from tests.server.test_cli import serve

CONFIG = """\
portway: 1
apis:
  - name: web
    type: http
    codeDir: ./fn
    routes:
      GET /version: app.handler
  - name: ws
    type: websocket
    codeDir: ./fn
    stages: [dev]
    routes:
      $default: {python: app.ws, routeResponse: true}
"""

CODE = """\
VERSION = "{version}"

def handler(event, context):
    return {{"statusCode": 200, "body": VERSION}}

def ws(event, context):
    return {{"statusCode": 200, "body": VERSION}}
"""


async def test_reload_serves_new_code_and_keeps_websockets(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(CODE.format(version="v1"))
    config = tmp_path / "portway.yaml"
    config.write_text(CONFIG)
    async with serve(config, "--reload") as base, aiohttp.ClientSession() as http:

        async def version() -> str:
            async with http.get(f"{base}/version") as resp:
                assert resp.status == 200
                return await resp.text()

        assert await version() == "v1"
        async with websockets.connect(base.replace("http://", "ws://") + "/dev") as ws:
            await ws.send("which?")
            async with asyncio.timeout(20):
                assert await ws.recv() == "v1"
            await asyncio.sleep(0.7)  # past the watcher's first scan (its baseline)
            saved = time.monotonic()
            (tmp_path / "fn" / "app.py").write_text(CODE.format(version="v2-new"))
            deadline = saved + 20.0
            while await version() != "v2-new":
                assert time.monotonic() < deadline, "the new code was never served"
                await asyncio.sleep(0.02)
            print(f"save -> first request on the new code: {(time.monotonic() - saved) * 1000:.0f} ms")
            answer = ""
            while answer != "v2-new":  # the same connection, answered by the new code once reloaded
                assert time.monotonic() < deadline, "the WebSocket route never served the new code"
                await ws.send("which?")
                async with asyncio.timeout(20):
                    answer = str(await ws.recv())
                assert answer in ("v1", "v2-new")


SERVERLESS = """\
service: svc
provider: {name: aws, runtime: python3.11}
custom:
  serverless-offline: {reloadHandler: true}
functions:
  web:
    handler: app.handler
    events:
      - httpApi: {path: /version, method: get}
"""


def test_reload_handler_is_read(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(CODE.format(version="v1"))
    (tmp_path / "serverless.yml").write_text(SERVERLESS)
    assert load_config(tmp_path / "serverless.yml").reload_handler
    (tmp_path / "serverless.yml").write_text(SERVERLESS.replace("reloadHandler: true", "useDocker: false"))
    assert not load_config(tmp_path / "serverless.yml").reload_handler


async def test_serverless_offline_reload_handler(tmp_path: Path) -> None:
    """``custom.serverless-offline.reloadHandler: true`` reloads without ``--reload``."""
    (tmp_path / "app.py").write_text(CODE.format(version="v1"))
    (tmp_path / "serverless.yml").write_text(SERVERLESS)
    async with serve(tmp_path / "serverless.yml") as base, aiohttp.ClientSession() as http:

        async def version() -> str:
            async with http.get(f"{base}/version") as resp:
                assert resp.status == 200
                return await resp.text()

        assert await version() == "v1"
        await asyncio.sleep(0.7)  # past the watcher's first scan (its baseline)
        (tmp_path / "app.py").write_text(CODE.format(version="v2-new"))
        deadline = time.monotonic() + 20.0
        while await version() != "v2-new":
            assert time.monotonic() < deadline, "the new code was never served"
            await asyncio.sleep(0.02)

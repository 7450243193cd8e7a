"""The `portway` command: validate, and serve the bundled example in both formats (a real process)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from server.cli import main
from tests.tls import self_signed_certificate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello"


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE / "portway.yaml")]) == 0
    assert "OK" in capsys.readouterr().out


def test_validate_reports_every_error_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "portway: 1\n"
        "apis:\n"
        "  - name: a\n"
        "    routes:\n"
        "      GET /x/{proxy+}/y: {mock: {status: 200}}\n"
        "      FETCH /z: {mock: {status: 200}}\n"
    )
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count(str(bad)) >= 3  # two located errors and the summary
    assert "2 error(s)" in err or "error(s)" in err


@asynccontextmanager
async def serve(config: Path, *extra: str) -> AsyncIterator[str]:
    """Run `python -m server serve CONFIG --port 0` and yield its base URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        str(config),
        "--port",
        "0",
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "the gateway exited before listening"
                if m := re.search(r"listening on (https?://\S+)", line):
                    break
        drain = asyncio.create_task(proc.stdout.read())
        yield m.group(1)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
        output = (await drain).decode()
        assert "Traceback" not in output, output
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def get_json(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def test_native_and_serverless_serve_the_same_handler() -> None:
    results = []
    for config in (EXAMPLE / "portway.yaml", EXAMPLE / "serverless.yml"):
        async with serve(config) as base:
            rest = await get_json(f"{base}/dev/hello?name=Ada")
            http_api = await get_json(f"{base}/hello?name=Bob")
            results.append((rest, http_api))
    for (rest_status, rest), (http_status, http_api) in results:
        assert rest_status == 200 and http_status == 200
        assert rest["message"] == "Hello, Ada!" and rest["path"] == "/hello"
        assert http_api["message"] == "Hello, Bob!" and http_api["path"] == "/hello"


async def test_serverless_stage_override() -> None:
    async with serve(EXAMPLE / "serverless.yml", "--stage", "prod") as base:
        status, body = await get_json(f"{base}/prod/hello")
        assert status == 200 and body["message"] == "Hello, world!"
        # /dev is no longer a stage, so the path goes to the $default-stage HTTP API: 404 there.
        async with aiohttp.ClientSession() as http, http.get(f"{base}/dev/hello") as resp:
            assert resp.status == 404


async def test_tls_for_https_and_wss(tmp_path: Path) -> None:
    import ssl

    import websockets

    cert, key = self_signed_certificate(tmp_path)
    config = ROOT / "examples" / "portway.yaml"  # hello REST API + chat WebSocket API
    async with serve(config, "--tls-cert", str(cert), "--tls-key", str(key)) as base:
        assert base.startswith("https://")
        async with aiohttp.ClientSession() as http, http.get(f"{base}/dev/hello", ssl=False) as resp:
            assert resp.status == 200
            assert (await resp.json())["message"] == "Hello, world!"
        context = ssl.create_default_context(cafile=str(cert))
        async with websockets.connect(base.replace("https://", "wss://") + "/dev", ssl=context) as ws:
            await ws.send("hello?")  # the chat API's $default route answers with its help text
            async with asyncio.timeout(20):
                assert await ws.recv()

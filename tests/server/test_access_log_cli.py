"""``portway serve --access-log-format F --access-log FILE``: a real process writes AWS-format
lines to the file; a format AWS would refuse stops the command before it serves."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

from tests.server.live import ROOT, gateway_process

HELLO = ROOT / "examples" / "hello" / "portway.yaml"
FORMAT = '{"requestId":"$context.requestId","status":"$context.status","path":"$context.path"}'


async def test_serve_writes_formatted_lines_to_the_access_log_file(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    async with gateway_process(HELLO, "--access-log-format", FORMAT, "--access-log", str(log)) as served:
        url = f"http://127.0.0.1:{served.port}/dev/health"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            request_id = response.headers["x-amzn-RequestId"]
        deadline = time.monotonic() + 10
        while not (log.exists() and log.read_text().endswith("\n")):
            assert time.monotonic() < deadline, "no access line written"
            await asyncio.sleep(0.02)
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"requestId": request_id, "status": "200", "path": "/dev/health"}
    ]


async def test_a_format_without_a_request_id_is_refused() -> None:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "server", "serve", str(HELLO), "--port", "0"),
        *("--access-log-format", '{"status":"$context.status"}'),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"$context.requestId" in err

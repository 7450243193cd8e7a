"""``portway serve --admin-port P``: /@metrics on its own listener, no longer on the API's."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello" / "portway.yaml"


async def test_metrics_move_to_the_admin_listener() -> None:
    proc = await asyncio.create_subprocess_exec(
        *(
            sys.executable,
            "-m",
            "server",
            "serve",
            str(EXAMPLE),
            "--port",
            "0",
            "--admin-port",
            "0",
            "--quiet",
        ),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        api = admin = 0
        async with asyncio.timeout(20):
            while not (api and admin):
                line = (await proc.stdout.readline()).decode()
                assert line, "the gateway exited before listening"
                if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                    api = int(m.group(1))
                if m := re.search(r"metrics on http://127\.0\.0\.1:(\d+)/@metrics", line):
                    admin = int(m.group(1))
        drain = asyncio.create_task(proc.stdout.read())
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{api}/dev/health") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{api}/@metrics") as resp:
                assert resp.status != 200  # an API path like any other now
                assert b"portway_" not in await resp.read()
            async with http.get(f"http://127.0.0.1:{admin}/@metrics") as resp:
                assert resp.status == 200
                families = {f.name for f in text_string_to_metric_families(await resp.text())}
        assert {"portway_requests", "portway_request_duration_seconds"} <= families
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
        assert "Traceback" not in (await drain).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

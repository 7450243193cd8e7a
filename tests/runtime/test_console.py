"""Handler output and access lines in ``portway serve``'s console (issue 10 item 8)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import websockets

from routes.integrations.base import FunctionError
from routes.integrations.python_inprocess import InProcessInvoker
from tests.runtime.serve import PROJECTS

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_LINE = r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t{request_id}\tx"


class Console:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def wait_for(self, pattern: str, within: float = 10.0) -> str:
        deadline = time.monotonic() + within
        while True:
            found = next((line for line in self.lines if re.search(pattern, line)), None)
            if found is not None:
                return found
            assert time.monotonic() < deadline, f"no line matches {pattern!r}:\n" + "\n".join(self.lines)
            await asyncio.sleep(0.01)


@asynccontextmanager
async def serve(config: Path, *extra: str) -> AsyncIterator[tuple[str, Console]]:
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
    stdout = proc.stdout
    console = Console()

    async def read() -> None:
        while line := await stdout.readline():
            console.lines.append(line.decode().rstrip("\n"))

    reader = asyncio.create_task(read())
    try:
        url = await console.wait_for(r"listening on (https?://\S+)", within=20)
        yield re.search(r"listening on (https?://\S+)", url).group(1), console  # type: ignore[union-attr]
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        async with asyncio.timeout(5):
            await reader


async def test_handler_output_as_on_lambda_and_access_lines() -> None:
    async with serve(PROJECTS / "logs" / "serverless.yml") as (url, console), aiohttp.ClientSession() as http:
        async with http.get(f"{url}/dev/talk") as response:
            assert response.status == 200
            request_id = await response.text()
        async with http.get(f"{url}/dev/fail") as response:
            assert response.status == 502
        # The root logger as Lambda sets it up, each line prefixed with the function's name.
        await console.wait_for("^logs-dev-talk \\| " + LAMBDA_LINE.replace("{request_id}", request_id) + "$")
        await console.wait_for(r"^logs-dev-talk \| printed line one$")
        await console.wait_for(r"^logs-dev-talk \| printed line two$")
        # The unhandled exception's full traceback, as Lambda logs it.
        await console.wait_for(r"^logs-dev-fail \| \[ERROR\] ValueError: boom$")
        await console.wait_for(r"^logs-dev-fail \| Traceback \(most recent call last\):$")
        await console.wait_for(r'^logs-dev-fail \|   File ".*handler.py", line \d+, in helper$')
        await console.wait_for(r'^logs-dev-fail \|     raise ValueError\("boom"\)$')
        # One access line per request, and per WebSocket event.
        await console.wait_for(r"Z GET /dev/talk 200 \d+\.\d ms logs-dev-talk$")
        await console.wait_for(r"Z GET /dev/fail 502 \d+\.\d ms logs-dev-fail$")
        async with http.get(f"{url}/dev/nowhere") as response:
            assert response.status == 403  # REST's answer for an unknown path
        await console.wait_for(r"Z GET /dev/nowhere 403 \d+\.\d ms -$")
        async with websockets.connect(url.replace("http", "ws", 1) + "/dev") as ws:
            await ws.send("hello")
            await console.wait_for(r"Z WS \$default /dev 200 \d+\.\d ms logs-dev-ws$")
        await console.wait_for(r"Z WS \$connect /dev 200 \d+\.\d ms logs-dev-ws$")
    assert not any("not shown" in line for line in console.lines)


async def test_quiet_has_no_access_lines() -> None:
    async with serve(PROJECTS / "logs" / "serverless.yml", "--quiet") as (url, console):
        async with aiohttp.ClientSession() as http, http.get(f"{url}/dev/talk") as response:
            assert response.status == 200
        await console.wait_for(r"^logs-dev-talk \| printed line two$")  # handler output stays
    assert not any(" GET /dev/talk " in line for line in console.lines)


async def test_inprocess_errors_are_logged_with_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="portway.function.inproc")
    invoker = InProcessInvoker(
        handler="rt_inproc_fail.fail",
        code_dir=Path(__file__).parent / "handlers",
        function_name="inproc",
        region="eu-west-1",
        account_id="1",
    )
    with pytest.raises(FunctionError):
        await invoker.invoke_event({}, request_id="r1", timeout_s=5.0)
    await invoker.close()
    lines = [record.getMessage() for record in caplog.records if record.name == "portway.function.inproc"]
    assert lines[:2] == ["[ERROR] KeyError: 'missing'", "Traceback (most recent call last):"]
    assert any(line.endswith("in fail") for line in lines)

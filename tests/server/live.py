"""A gateway served the way the CLI serves it (GatewayRunner, its protocol and limits) on port 0,
and a raw-socket client for requests no well-behaved HTTP client would send."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from server.app import create_app
from server.config.model import GatewayConfig
from server.http_server import GatewayRunner
from server.limits import DEFAULT_LIMITS, ServerLimits

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def live_gateway(config: GatewayConfig, limits: ServerLimits = DEFAULT_LIMITS) -> AsyncIterator[int]:
    """Serve ``config`` on 127.0.0.1, port 0; yield the port."""
    runner = GatewayRunner(
        create_app(config, limits=limits), limits=limits, access_log=None, shutdown_timeout=2
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def send_raw(port: int, data: bytes, *, wait_s: float = 5.0) -> bytes:
    """Send ``data`` on a new connection and read until the server closes it (or ``wait_s``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_until_closed(reader, wait_s)
    finally:
        writer.close()


async def read_until_closed(reader: asyncio.StreamReader, wait_s: float) -> bytes:
    """Everything the server sends until it closes the connection; TimeoutError after ``wait_s``."""
    received = b""
    async with asyncio.timeout(wait_s):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def seconds_until_closed(reader: asyncio.StreamReader, wait_s: float) -> tuple[float, bytes]:
    start = time.monotonic()
    try:
        data = await read_until_closed(reader, wait_s)
    except ConnectionResetError:
        data = b""
    return time.monotonic() - start, data


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


@asynccontextmanager
async def gateway_process(config: Path, *extra: str, stop_timeout_s: float = 20.0) -> AsyncIterator[Served]:
    """``python -m server serve CONFIG --port 0 EXTRA...`` as a child process; SIGTERM at the end."""
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
                if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                    break
        output = asyncio.create_task(proc.stdout.read())
        yield Served(proc, int(m.group(1)), output)
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(stop_timeout_s):
                await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    port: int
    output: asyncio.Task[bytes]


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")

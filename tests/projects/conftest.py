"""Fixtures for serving whole Serverless Framework projects: a real moto server (DynamoDB and the
other AWS services the handlers call), and a Portway process serving a project's serverless.yml."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

PROJECTS = Path(__file__).resolve().parent.parent / "fixtures" / "projects"
ROOT = Path(__file__).resolve().parents[2]

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's real HTTP server (every service on one port), on a free loopback port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@asynccontextmanager
async def serve_project(config: Path, env: Mapping[str, str], *extra: str) -> AsyncIterator[str]:
    """Run ``portway serve CONFIG --port 0`` from an unrelated folder (a project must not depend on
    the gateway's cwd) and yield its base URL; stop it with SIGTERM and check it exits cleanly."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        str(config),
        "--port",
        "0",
        *extra,
        cwd="/",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **env},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "the gateway exited before listening:\n" + "".join(seen)
                seen.append(line)
                if m := re.search(r"listening on (https?://\S+)", line):
                    break
        drain = asyncio.create_task(proc.stdout.read())
        yield m.group(1)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await proc.wait()
        await drain
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

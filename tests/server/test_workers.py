"""``portway serve --workers N``: N real processes on one port (SO_REUSEPORT) under the supervisor:
connections spread over them, a killed worker is replaced, SIGHUP replaces every worker without
the port refusing a request (and refuses an invalid configuration), SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from server.cli import main

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
portway: 1
apis:
  - name: pids
    type: rest
    codeDir: ./handlers
    stages: {dev: {}}
    routes:
      GET /pid:
        python: pid.handler
        isolation: inprocess
"""

HANDLER = """\
import json, os

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid()})}
"""


def write_project(root: Path) -> Path:
    (root / "handlers").mkdir()
    (root / "handlers" / "pid.py").write_text(HANDLER)
    config = root / "portway.yaml"
    config.write_text(CONFIG)
    return config


@dataclass
class Supervised:
    proc: asyncio.subprocess.Process
    port: int
    lines: list[str] = field(default_factory=list)

    async def wait_line(self, pattern: str, timeout_s: float = 30.0, start: int = 0) -> re.Match[str]:
        """The first output line from index ``start`` on matching ``pattern`` (polled, bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if m := re.search(pattern, line):
                    return m
            await asyncio.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "".join(self.lines))


@asynccontextmanager
async def supervised(config: Path, *extra: str) -> AsyncIterator[Supervised]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        str(config),
        "--port",
        "0",
        "--quiet",
        "--drain-timeout",
        "2",
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: list[str] = []

    async def pump() -> None:
        while line := await stdout.readline():
            lines.append(line.decode())

    pumping = asyncio.create_task(pump())
    try:
        served = Supervised(proc, 0, lines)
        m = await served.wait_line(r"listening on http://127\.0\.0\.1:(\d+) \(redis .*, 2 workers\)")
        served.port = int(m.group(1))
        yield served
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        async with asyncio.timeout(10):
            await pumping


async def pid_of_new_connection(port: int) -> int:
    # A connection per request: SO_REUSEPORT spreads connections, not requests.
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
        http.get(f"http://127.0.0.1:{port}/dev/pid") as resp,
    ):
        assert resp.status == 200, await resp.text()
        pid: int = (await resp.json())["pid"]
        return pid


async def pids_seen(port: int, want: set[int], attempts: int = 400) -> set[int]:
    """Pids answering new connections until every pid of ``want`` answered (bounded)."""
    seen: set[int] = set()
    for _ in range(attempts):
        seen.add(await pid_of_new_connection(port))
        if want <= seen:
            break
    return seen


def worker_pids(served: Supervised, start: int = 0) -> dict[int, int]:
    pids: dict[int, int] = {}
    for line in served.lines[start:]:
        if m := re.search(r"worker (\d+) started \(pid (\d+)\)", line):
            pids[int(m.group(1))] = int(m.group(2))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_more_than_one_worker_needs_redis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path)
    assert main(["serve", str(config), "--workers", "2"]) == 2
    assert "--workers N > 1 needs --redis-url" in capsys.readouterr().err


async def test_workers_share_the_port_restart_and_stop(tmp_path: Path, redis_url: str) -> None:
    config = write_project(tmp_path)
    async with supervised(config, "--workers", "2", "--redis-url", redis_url) as served:
        pids = worker_pids(served)
        assert len(pids) == 2
        # Both workers take connections on the one port.
        assert await pids_seen(served.port, set(pids.values())) == set(pids.values())

        # kill -9 one worker: the supervisor starts another in its place, the port keeps serving.
        mark = len(served.lines)
        os.kill(pids[0], signal.SIGKILL)
        await served.wait_line(r"worker 0 \(pid \d+\) exited with signal SIGKILL: restarting", start=mark)
        m = await served.wait_line(r"worker 0 \(pid (\d+)\) listening", start=mark)
        replacement = int(m.group(1))
        want = {replacement, pids[1]}
        assert await pids_seen(served.port, want) == want

        # SIGTERM: every worker drains and exits, then the supervisor.
        served.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await served.proc.wait() == 0
        assert not any(alive(pid) for pid in want)
    assert "Traceback" not in "".join(served.lines)


async def test_sighup_replaces_workers_without_refusing(tmp_path: Path, redis_url: str) -> None:
    config = write_project(tmp_path)
    async with supervised(config, "--workers", "2", "--redis-url", redis_url) as served:
        old = set(worker_pids(served).values())
        failures: list[BaseException] = []
        answered = 0
        stop = asyncio.Event()

        async def load() -> None:
            nonlocal answered
            while not stop.is_set():
                try:
                    await pid_of_new_connection(served.port)
                    answered += 1
                except (aiohttp.ClientError, AssertionError, TimeoutError) as exc:
                    failures.append(exc)

        # An invalid configuration is refused: the workers keep serving the old one.
        good = config.read_text()
        config.write_text("portway: 1\napis: [{name: x}]\n")
        mark = len(served.lines)
        served.proc.send_signal(signal.SIGHUP)
        await served.wait_line(r"SIGHUP: the new configuration is invalid", start=mark)
        assert all(alive(pid) for pid in old)

        config.write_text(good)
        loader = asyncio.create_task(load())
        mark = len(served.lines)
        served.proc.send_signal(signal.SIGHUP)
        await served.wait_line(r"SIGHUP: every worker replaced", timeout_s=40, start=mark)
        stop.set()
        await loader
        new = set(worker_pids(served, start=mark).values())
        assert len(new) == 2 and not new & old
        assert await pids_seen(served.port, new) == new
        assert answered > 0 and not failures, failures[:3]
        assert not any(alive(pid) for pid in old)


async def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path, redis_url: str) -> None:
    config = write_project(tmp_path)
    async with supervised(config, "--workers", "2", "--redis-url", redis_url) as served:
        pids = set(worker_pids(served).values())
        served.proc.kill()  # no chance to stop them: they see their line to it close
        await served.proc.wait()
        await served.wait_line(r"the supervisor is gone: stopping")
        for _ in range(600):  # 30 s at most
            if not any(alive(pid) for pid in pids):
                break
            await asyncio.sleep(0.05)
        assert not any(alive(pid) for pid in pids)


THROTTLED = """\
portway: 1
throttle: off
apis:
  - name: limited
    type: rest
    stages:
      dev:
        throttle: {rate: 0.001, burst: 3}
    routes:
      GET /mock:
        mock: {status: 200, body: ok}
"""


async def status_of_new_connection(port: int) -> int:
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"http://127.0.0.1:{port}/dev/mock") as resp,
    ):
        return resp.status


@pytest.mark.redis
async def test_workers_share_one_bucket_on_redis_cluster(
    tmp_path: Path, clean_redis_cluster_url: str
) -> None:
    """Two workers on a 3-master Redis Cluster admit what one process would: burst 3, then 429."""
    config = tmp_path / "portway.yaml"
    config.write_text(THROTTLED)
    async with supervised(config, "--workers", "2", "--redis-url", clean_redis_cluster_url) as served:
        statuses = [await status_of_new_connection(served.port) for _ in range(8)]
    assert statuses == [200, 200, 200] + [429] * 5


WS_CONFIG = """\
portway: 1
apis:
  - name: ws
    type: websocket
    codeDir: ./handlers
    stages: [dev]
    routes:
      $default: {python: whoami.handler, isolation: inprocess, routeResponse: true}
"""

WS_HANDLER = """\
def handler(event, context):
    return {"statusCode": 200, "body": event["requestContext"]["connectionId"]}
"""


@pytest.mark.redis
async def test_connections_api_reaches_a_socket_on_another_worker_over_redis_cluster(
    tmp_path: Path, clean_redis_cluster_url: str
) -> None:
    """A socket held by one worker gets every @connections post, whichever worker the post's
    connection lands on (the other one relays it over the node bus: cluster pub/sub)."""
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "whoami.py").write_text(WS_HANDLER)
    config = tmp_path / "portway.yaml"
    config.write_text(WS_CONFIG)
    async with (
        supervised(config, "--workers", "2", "--redis-url", clean_redis_cluster_url) as served,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"ws://127.0.0.1:{served.port}/dev") as ws,
    ):
        await ws.send_str("who")
        connection_id = await ws.receive_str(timeout=10)
        sent = {f"m{i}" for i in range(12)}  # new connections: both workers take some
        for text in sorted(sent):
            connector = aiohttp.TCPConnector(force_close=True)
            async with (
                aiohttp.ClientSession(connector=connector) as poster,
                poster.post(
                    f"http://127.0.0.1:{served.port}/dev/@connections/{connection_id}", data=text
                ) as resp,
            ):
                assert resp.status == 200, await resp.text()
        received = {await ws.receive_str(timeout=10) for _ in sent}
        assert received == sent

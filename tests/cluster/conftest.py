"""N real gateway processes on one real redis-server.

The ``cluster`` fixture starts three ``portway serve CONFIG --port 0 --redis-url URL`` processes
on a private ``redis-server`` (``redis_server`` from tests/redis_fixture.py, so a test may restart
it), waits for each to print its URL, and on teardown stops every node still running with SIGTERM,
asserting that it exits 0 without a traceback in its output (a node killed by the test is skipped).

Each test gets its own config in ``tmp_path`` with short cluster timings in its ``cluster:``
section (:data:`TIMINGS`, or the test's ``cluster_timings``).

WebSocket handlers (tests/cluster/handlers/cluster_ws.py) append every ``$connect`` and
``$disconnect`` to a JSON-lines file the test reads (:meth:`Cluster.events`), with the pid of the
node that ran it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
import orjson
import pytest
import redis.asyncio as aioredis
import websockets
from botocore.config import Config
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from websockets.asyncio.client import ClientConnection

from server.config.load import load_config
from server.config.model import ClusterSettings
from tests.cluster.handlers.cluster_ws import EVENTS_ENV
from tests.redis_fixture import RedisServer

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = Path(__file__).resolve().parent / "handlers"
NODES = 3
NS = "portway:"  # the Redis store's key and channel prefix
STAGE = "dev"

# Short timings so that a dead node is detected in about a second (seconds).
TIMINGS = ClusterSettings(heartbeat_s=0.2, node_ttl_s=1.0, reaper_interval_s=0.2, rpc_timeout_s=1.0)
CREDS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret", "region_name": "us-east-1"}

T = TypeVar("T")


def config_yaml(timings: ClusterSettings) -> str:
    return f"""\
portway: 1
cluster:
  heartbeat: {timings.heartbeat_s}
  nodeTtl: {timings.node_ttl_s}
  reaperInterval: {timings.reaper_interval_s}
  rpcTimeout: {timings.rpc_timeout_s}
apis:
  - name: chat
    id: chatapi
    type: websocket
    codeDir: {json.dumps(str(HANDLERS))}
    defaults: {{isolation: inprocess, timeout: 5000}}
    routes:
      $connect: cluster_ws.connect
      $disconnect: cluster_ws.disconnect
      whoami: {{python: cluster_ws.whoami, routeResponse: true}}
"""


async def eventually(check: Callable[[], Awaitable[T | None]], *, within: float, what: str) -> T:
    """Poll ``check`` (every 20 ms, for at most ``within`` seconds) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass(eq=False)
class Node:
    index: int
    proc: asyncio.subprocess.Process
    url: str = ""  # http://127.0.0.1:PORT
    output: list[str] = field(default_factory=list)
    killed: bool = False
    _drain: asyncio.Task[None] | None = None
    _mgmt: Any = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + f"/{STAGE}"

    @property
    def api(self) -> str:
        """Base of this node's ``@connections`` API (the boto3 ``endpoint_url``)."""
        return f"{self.url}/{STAGE}"

    def mgmt(self) -> Any:
        """A boto3 ``apigatewaymanagementapi`` client pointed at this node (no retries)."""
        if self._mgmt is None:
            self._mgmt = boto3.client(
                "apigatewaymanagementapi",
                endpoint_url=self.api,
                config=Config(retries={"max_attempts": 1, "mode": "standard"}),
                **CREDS,
            )
        return self._mgmt

    def connect(self) -> Any:
        """``async with node.connect() as ws``: a WebSocket client on this node."""
        return websockets.connect(self.ws_url, open_timeout=5, close_timeout=2)

    def log(self) -> str:
        return "".join(self.output)


async def whoami(ws: ClientConnection) -> tuple[str, int]:
    """(connection id, pid of the node holding it), asked over the socket itself."""
    await ws.send('{"action":"whoami"}')
    async with asyncio.timeout(5):
        reply = json.loads(await ws.recv())
    return str(reply["connectionId"]), int(reply["pid"])


class Cluster:
    def __init__(
        self,
        redis_server: RedisServer,
        directory: Path,
        timings: ClusterSettings = TIMINGS,
        *,
        config_text: str | None = None,
        embedded_state: Path | None = None,
    ) -> None:
        """``config_text``: the nodes' config instead of :func:`config_yaml`; ``embedded_state``:
        run on the embedded store (one node) with this ``--state-file`` instead of Redis."""
        self.config_text = config_text
        self.embedded_state = embedded_state
        self.redis_server = redis_server
        self.directory = directory
        self.events_file = directory / "events.jsonl"
        self.config = directory / "portway.yaml"
        self.nodes: list[Node] = []
        # The test's own client survives the test's Redis restarts (retried on a new connection).
        self.redis = aioredis.Redis.from_url(
            redis_server.url,
            socket_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 20),
            retry_on_error=[RedisConnectionError],
        )
        self.timings = timings

    # Nodes -------------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        if self.config_text is not None:
            self.config.write_text(self.config_text)
        else:
            self.config.write_text(config_yaml(self.timings))
            # The nodes read the same file: make sure the timings are really in it.
            assert load_config(self.config).cluster == self.timings
        serve = ["serve", str(self.config), "--port", "0"]
        if self.embedded_state is not None:
            serve += ["--state-file", str(self.embedded_state)]
        else:
            serve += ["--redis-url", self.redis_server.url]
        return [sys.executable, "-m", "server", *serve]

    async def _spawn(self, index: int, command: list[str]) -> Node:
        env = {k: v for k, v in os.environ.items() if k != "PORTWAY_REDIS_URL"}
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "PYTHONFAULTHANDLER": "1",
                "PORTWAY_LOG_LEVEL": os.environ.get("PORTWAY_CLUSTER_LOG_LEVEL", "INFO"),
                EVENTS_ENV: str(self.events_file),
            }
        )
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        node = Node(index, proc)
        self.nodes.append(node)
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stdout.readline()).decode(errors="replace")
                assert line, f"node {index} exited before listening:\n{node.log()}"
                node.output.append(line)
                if m := re.search(r"listening on (http://\S+)", line):
                    node.url = m.group(1)
                    break
        node._drain = asyncio.create_task(self._read_output(node))
        return node

    @staticmethod
    async def _read_output(node: Node) -> None:
        assert node.proc.stdout is not None
        while line := await node.proc.stdout.readline():
            node.output.append(line.decode(errors="replace"))

    async def start(self, count: int = NODES) -> None:
        command = self._command()
        await asyncio.gather(*(self._spawn(i, command) for i in range(count)))
        self.nodes.sort(key=lambda n: n.index)
        # Every node has announced itself (heartbeat) before the test starts.
        await eventually(self._all_announced, within=10, what="every node in the `nodes` set")

    async def _all_announced(self) -> bool:
        if self.embedded_state is not None:
            return True
        return await self.redis.scard(NS + "nodes") >= len(self.nodes)

    async def restart_all(self) -> None:
        """Stop every node (SIGTERM, checked as on teardown) and start as many again."""
        count = len(self.nodes)
        await self.stop()
        self.nodes.clear()
        await self.start(count)

    def kill(self, node: Node) -> float:
        """SIGKILL ``node`` (no shutdown, no $disconnect of its own); returns the wall-clock time."""
        node.killed = True
        when = time.time()
        node.proc.send_signal(signal.SIGKILL)
        return when

    def assert_all_running(self, *, except_killed: bool = True) -> None:
        for node in self.nodes:
            if node.killed and except_killed:
                continue
            assert node.alive, f"node {node.index} exited with {node.proc.returncode}:\n{node.log()}"

    async def stop(self) -> None:
        """SIGTERM the nodes still running; each must exit 0, with no traceback in its output."""
        problems: list[str] = []
        running = [n for n in self.nodes if n.alive]
        for node in running:
            node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                async with asyncio.timeout(15):
                    code = await node.proc.wait()
            except TimeoutError:
                # PYTHONFAULTHANDLER is set: SIGABRT makes the node print every thread's stack.
                node.proc.send_signal(signal.SIGABRT)
                try:
                    async with asyncio.timeout(5):
                        code = await node.proc.wait()
                except TimeoutError:
                    node.proc.kill()
                    code = await node.proc.wait()
                problems.append(f"node {node.index} did not stop on SIGTERM (stacks in its output)")
            if node._drain is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await node._drain
            if node.killed:
                continue
            if node not in running:
                problems.append(f"node {node.index} had exited by itself with {code}")
            elif code != 0:
                problems.append(f"node {node.index} exited with {code}")
            if "Traceback" in node.log():
                problems.append(f"node {node.index} logged a traceback")
        if problems:
            logs = "\n".join(f"--- node {n.index} (pid {n.pid}) ---\n{n.log()}" for n in self.nodes)
            raise AssertionError("; ".join(problems) + "\n" + logs)

    # Observations ------------------------------------------------------------------------------

    def events(self, route: str | None = None) -> list[dict[str, Any]]:
        """Every ``$connect``/``$disconnect`` recorded so far by any node."""
        if not self.events_file.exists():
            return []
        lines = self.events_file.read_text().splitlines()
        events = [json.loads(line) for line in lines if line.strip()]
        return [e for e in events if route is None or e["route"] == route]

    def disconnects(self, connection_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events("$disconnect") if e["id"] == connection_id]

    async def owner(self, connection_id: str) -> str | None:
        """The node id in the connection's store record (None: no record)."""
        value = await self.redis.hget(NS + f"conn:{connection_id}", "node")
        return None if value is None else value.decode()

    def node_by_pid(self, pid: int) -> Node:
        return next(n for n in self.nodes if n.pid == pid)


@pytest.fixture
def cluster_timings() -> ClusterSettings:
    """The nodes' cluster timings; a test may override it with
    ``@pytest.mark.parametrize("cluster_timings", [...])``."""
    return TIMINGS


@contextlib.asynccontextmanager
async def running(nodes: Cluster, count: int = NODES) -> AsyncIterator[Cluster]:
    """Start ``count`` nodes; on exit stop them (checked: exit 0, no traceback), kill any left."""
    try:
        await nodes.start(count)
        yield nodes
    finally:
        try:
            await nodes.stop()
        finally:
            for node in nodes.nodes:
                if node.alive:
                    node.proc.kill()
                    await node.proc.wait()
            await nodes.redis.aclose()


@pytest.fixture
async def cluster(
    redis_server: RedisServer, tmp_path: Path, cluster_timings: ClusterSettings
) -> AsyncIterator[Cluster]:
    """Three gateway nodes on one private redis-server (which the test may restart)."""
    async with running(Cluster(redis_server, tmp_path, cluster_timings)) as nodes:
        yield nodes


class BusTap:
    """Counts what the nodes publish on the bus: ``node:*`` (requests and replies) and ``fanout``.

    Redis delivers to one subscriber in publish order, so after :meth:`collect` publishes a
    sentinel and reads up to it, every message published before it has been seen.
    """

    SENTINEL = "test:bus-tap-sentinel"

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._pubsub = redis.pubsub()
        self.messages: list[tuple[str, dict[str, Any]]] = []  # (channel without prefix, message)

    async def __aenter__(self) -> BusTap:
        await self._pubsub.psubscribe(NS + "node:*")
        await self._pubsub.subscribe(NS + "fanout", self.SENTINEL)
        # Wait for the three confirmations so nothing published next is missed.
        confirmed = 0
        async with asyncio.timeout(5):
            while confirmed < 3:
                message = await self._pubsub.get_message(timeout=1)
                if message is not None and message["type"] in ("subscribe", "psubscribe"):
                    confirmed += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pubsub.aclose()

    async def collect(self) -> list[tuple[str, dict[str, Any]]]:
        """Everything published since the last call (or since the tap opened)."""
        token = os.urandom(8).hex()
        await self._redis.publish(self.SENTINEL, token)
        seen: list[tuple[str, dict[str, Any]]] = []
        async with asyncio.timeout(5):
            while True:
                message = await self._pubsub.get_message(timeout=1)
                if message is None or message["type"] not in ("message", "pmessage"):
                    continue
                channel = message["channel"].decode()
                if channel == self.SENTINEL:
                    if message["data"].decode() == token:
                        break
                    continue
                seen.append((channel.removeprefix(NS), orjson.loads(message["data"])))
        self.messages += seen
        return seen

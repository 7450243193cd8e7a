"""``portway cluster CONFIG --nodes N``: a multi-node set-up on one machine, on loopback.

Starts a private ``redis-server`` (Debian's binary, AOF in a temporary directory), N ``portway
serve`` nodes sharing it, and nginx (Debian's) in front of them (the configuration of
server/cluster_plan.py), prints the URLs, and on Ctrl-C / SIGTERM stops everything in the order
that keeps the drain meaningful: the nodes first (WebSocket clients get 1001 through nginx and
every ``$disconnect`` runs while Redis is still up), then nginx, then Redis. If any child exits
by itself the others are stopped too and the command exits 1. Every child's output is shown,
prefixed with its name.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from server.cluster_plan import LOOPBACK, ClusterPlan, nginx_conf, node_command, redis_command
from server.config.model import GatewayConfig

__all__ = ["add_parser", "run"]

START_TIMEOUT_S = 60.0  # a node installs its handlers' requirements before listening
_LISTENING = re.compile(r"listening on (http://\S+)")
_NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")


class ClusterError(Exception):
    """The cluster could not start: one line for the user."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = sub.add_parser(
        "cluster",
        help="run Redis, N gateway nodes and nginx on this machine (loopback), until Ctrl-C",
        description="A local multi-node set-up: redis-server, N `portway serve` nodes sharing it, "
        "and nginx in front (Debian packages redis-server and nginx).",
    )
    cluster.add_argument("config", type=Path)
    cluster.add_argument("--nodes", type=int, default=2, help="gateway processes (default 2)")
    cluster.add_argument("--host", default=LOOPBACK, help="nginx's listening address (default 127.0.0.1)")
    cluster.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080; 0: a free port)")
    cluster.add_argument(
        "--drain-timeout", type=float, default=10.0, metavar="S", help="passed to every node (default 10)"
    )
    cluster.add_argument(
        "--serve",
        action="append",
        default=[],
        metavar="OPTION",
        dest="serve_args",
        help="a `portway serve` option for every node, repeatable, with '=': --serve=--quiet",
    )


def run(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        print("--nodes must be at least 1", file=sys.stderr)
        return 2
    try:
        binaries = _binaries()
    except ClusterError as exc:
        print(f"portway cluster: {exc}", file=sys.stderr)
        return 1
    from server.cli import _load

    config = _load(args.config, None)
    if config is None:
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="portway-cluster-"))
    workdir.chmod(0o755)  # nginx's workers (user nobody when started as root) use its temp paths
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(_cluster(args, config, workdir, *binaries))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _binaries() -> tuple[str, str]:
    redis = shutil.which(os.environ.get("REDIS_SERVER") or "redis-server")
    nginx = shutil.which("nginx") or next((p for p in _NGINX_PATHS if os.access(p, os.X_OK)), None)
    missing = [name for name, path in (("redis-server", redis), ("nginx", nginx)) if path is None]
    if missing:
        raise ClusterError(f"needs {' and '.join(missing)} (Debian: apt-get install {' '.join(missing)})")
    assert redis is not None and nginx is not None
    return redis, nginx


@dataclass(eq=False)
class Child:
    name: str
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)  # kept until the child is up, for errors
    pump: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.proc.returncode is None


def _free_port(host: str) -> int:
    """A port that was free a moment ago (nginx and Redis cannot bind port 0 and report it);
    a start that loses the race is retried on another port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _orphan_guard() -> list[str]:
    """``setpriv --pdeathsig TERM --`` (util-linux, on every Debian): the child gets SIGTERM if
    this command dies without stopping it (SIGKILL, a crash), instead of running on unnoticed in
    its own session. Nothing where setpriv is missing."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


async def _spawn(name: str, command: list[str], env: dict[str, str] | None = None) -> Child:
    proc = await asyncio.create_subprocess_exec(
        *_orphan_guard(),
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches this command only; it stops the children in order
    )
    return Child(name, proc)


def _say(text: str) -> None:
    """Print, ignoring a closed stdout (``portway cluster | head``): the children must still be
    stopped, and their output still drained, after the reader went away."""
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)


async def _forward(child: Child) -> None:
    """Show the child's output, prefixed with its name, until it exits (draining it even when
    our own stdout is gone, so the child never blocks on a full pipe)."""
    assert child.proc.stdout is not None
    while line := await child.proc.stdout.readline():
        _say(f"{child.name} | {line.decode(errors='replace').rstrip()}")


async def _read_until(child: Child, pattern: re.Pattern[str], deadline: float) -> re.Match[str]:
    assert child.proc.stdout is not None
    loop = asyncio.get_running_loop()
    while True:
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                raw = await child.proc.stdout.readline()
        except TimeoutError:
            raise ClusterError(f"{child.name} did not start in time:\n{''.join(child.lines)}") from None
        if not raw:
            await child.proc.wait()
            raise ClusterError(f"{child.name} exited with {child.proc.returncode}:\n{''.join(child.lines)}")
        line = raw.decode(errors="replace")
        child.lines.append(line)
        if m := pattern.search(line):
            return m


async def _answers(host: str, port: int, request: bytes | None, expect: bytes) -> bool:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    try:
        if request is not None:
            writer.write(request)
            await writer.drain()
        async with asyncio.timeout(2):
            return (await reader.read(64)).startswith(expect)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def _wait_answering(
    child: Child, host: str, port: int, request: bytes | None, expect: bytes, deadline: float
) -> None:
    loop = asyncio.get_running_loop()
    while not await _answers(host, port, request, expect):
        if not child.running:
            raise ClusterError(f"{child.name} exited with {child.proc.returncode}")
        if loop.time() >= deadline:
            raise ClusterError(f"{child.name} does not answer on {host}:{port}")
        await asyncio.sleep(0.05)


class _Cluster:
    def __init__(self, args: argparse.Namespace, redis_binary: str, nginx_binary: str, workdir: Path) -> None:
        self.args = args
        self.redis_binary = redis_binary
        self.nginx_binary = nginx_binary
        self.workdir = workdir
        self.redis: Child | None = None
        self.nodes: list[Child] = []
        self.nginx: Child | None = None
        self.plan = ClusterPlan(
            config=args.config.resolve(),
            nodes=args.nodes,
            workdir=workdir,
            lb_host=args.host,
            lb_port=args.port,
            redis_port=0,
            serve_args=("--drain-timeout", str(args.drain_timeout), *args.serve_args),
        )

    async def start(self) -> list[int]:
        loop = asyncio.get_running_loop()
        for _ in range(3):  # another process may take the free port first
            self.plan = dataclasses.replace(self.plan, redis_port=_free_port(LOOPBACK))
            self.redis = await _spawn(
                "redis", [*redis_command(self.plan, self.redis_binary), "--loglevel", "warning"]
            )
            try:
                await _wait_answering(
                    self.redis, LOOPBACK, self.plan.redis_port, b"PING\r\n", b"+PONG", loop.time() + 10
                )
                break
            except ClusterError:
                if self.redis.running:
                    raise
        else:
            raise ClusterError("redis-server could not start on a free port")
        self.redis.pump = asyncio.create_task(_forward(self.redis))
        env = {k: v for k, v in os.environ.items() if k != "PORTWAY_REDIS_URL"} | {"PYTHONUNBUFFERED": "1"}
        command = node_command(self.plan)
        self.nodes = [await _spawn(f"node-{i + 1}", command, env) for i in range(self.plan.nodes)]
        deadline = loop.time() + START_TIMEOUT_S
        urls = await asyncio.gather(*(_read_until(n, _LISTENING, deadline) for n in self.nodes))
        ports = [int(m.group(1).rsplit(":", 1)[1]) for m in urls]
        for node in self.nodes:
            node.pump = asyncio.create_task(_forward(node))
        conf = self.workdir / "nginx.conf"
        probe = b"GET /@health HTTP/1.0\r\nHost: cluster\r\n\r\n"
        for attempt in range(3):
            port = self.args.port or _free_port(self.args.host)
            self.plan = dataclasses.replace(self.plan, lb_port=port)
            await asyncio.to_thread(conf.write_text, nginx_conf(self.plan, ports))
            self.nginx = await _spawn("nginx", [self.nginx_binary, "-p", str(self.workdir), "-c", str(conf)])
            try:
                await _wait_answering(
                    self.nginx, self.args.host, port, probe, b"HTTP/1.1 200", loop.time() + 10
                )
                break
            except ClusterError:
                if self.nginx.running or self.args.port or attempt == 2:
                    raise ClusterError(f"nginx did not start:\n{await _output(self.nginx)}") from None
        assert self.nginx is not None
        self.nginx.pump = asyncio.create_task(_forward(self.nginx))
        return ports

    def children(self) -> list[Child]:
        return [c for c in (self.redis, *self.nodes, self.nginx) if c is not None]

    async def stop(self) -> None:
        """Nodes first (they drain through nginx and need Redis for $disconnect), then nginx
        (SIGQUIT: graceful), then Redis. Each step is bounded; a child that overstays is killed."""
        node_grace = self.args.drain_timeout + 10
        try:
            await _stop([n for n in self.nodes if n.running], signal.SIGTERM, node_grace)
        finally:
            try:
                if self.nginx is not None and self.nginx.running:
                    await _stop([self.nginx], signal.SIGQUIT, 5)
            finally:
                if self.redis is not None and self.redis.running:
                    await _stop([self.redis], signal.SIGTERM, 5)
        for child in self.children():
            if child.pump is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2):
                        await child.pump


async def _output(child: Child) -> str:
    if child.proc.stdout is None:
        return ""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2):
            return "".join(child.lines) + (await child.proc.stdout.read()).decode(errors="replace")
    return "".join(child.lines)


async def _stop(children: list[Child], sig: signal.Signals, grace_s: float) -> None:
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(sig)
    waits = [asyncio.create_task(child.proc.wait()) for child in children]
    if not waits:
        return
    _, pending = await asyncio.wait(waits, timeout=grace_s)
    for child in children:
        if child.running:
            _say(f"portway cluster: {child.name} did not stop within {grace_s:g} s: killed")
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
    if pending:
        await asyncio.wait(pending, timeout=5)


async def _cluster(
    args: argparse.Namespace, config: GatewayConfig, workdir: Path, redis_binary: str, nginx_binary: str
) -> int:
    from server.cli import _route_lines

    cluster = _Cluster(args, redis_binary, nginx_binary, workdir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    code = 0
    try:
        try:
            ports = await cluster.start()
        except ClusterError as exc:
            print(f"portway cluster: {exc}", file=sys.stderr, flush=True)
            return 1
        plan = cluster.plan
        _say(
            f"Portway cluster: {plan.nodes} node(s) behind {plan.lb_url} (redis {plan.redis_url}, "
            f"files in {workdir}), started in {time.monotonic() - started:.1f} s"
        )
        for node, port in zip(cluster.nodes, ports, strict=True):
            _say(f"  {node.name}: http://{LOOPBACK}:{port} (pid {node.proc.pid})")
        for line in _route_lines(config, plan.lb_url):
            _say(line)
        _say("Ctrl-C stops everything.")
        exits = {asyncio.create_task(c.proc.wait()): c for c in cluster.children()}
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopping, *exits], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        for task in exits:
            task.cancel()
        if stopping not in done:
            dead = [c for c in cluster.children() if not c.running]
            names = ", ".join(f"{c.name} (exit {c.proc.returncode})" for c in dead)
            _say(f"portway cluster: {names} exited: stopping everything")
            code = 1
    finally:
        _say("Portway cluster stopping")
        await cluster.stop()
        _say("Portway cluster stopped")
    return code

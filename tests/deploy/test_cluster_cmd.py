"""``portway cluster CONFIG --nodes 2``: real redis-server, two real gateway processes and real
nginx (Debian's) on loopback. A WebSocket client connected through nginx reaches a client held by
the other node with ``@connections`` and ``@broadcast`` (called through nginx too); SIGTERM stops
everything, bounded: the clients get 1001 through nginx, every port closes, the files go."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from server.cluster_plan import ClusterPlan, nginx_conf, node_command, redis_command

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = Path(__file__).resolve().parent / "handlers"
CONFIG = f"""\
portway: 1
cluster: {{heartbeat: 0.2, nodeTtl: 1.0, reaperInterval: 0.2, rpcTimeout: 2.0}}
apis:
  - name: relay
    type: websocket
    codeDir: {json.dumps(str(HANDLERS))}
    defaults: {{isolation: inprocess, timeout: 8000}}
    routes:
      whoami: {{python: relay.whoami, routeResponse: true}}
      relay: {{python: relay.relay, routeResponse: true}}
      shout: {{python: relay.shout, routeResponse: true}}
"""


def test_plan_renders_loopback_processes_and_a_websocket_aware_nginx(tmp_path: Path) -> None:
    plan = ClusterPlan(tmp_path / "portway.yaml", 2, tmp_path, "127.0.0.1", 8080, 6390, ("--quiet",))
    redis = redis_command(plan)
    assert redis[redis.index("--bind") + 1] == "127.0.0.1" and redis[redis.index("--port") + 1] == "6390"
    node = node_command(plan)
    assert node[node.index("--redis-url") + 1] == "redis://127.0.0.1:6390/0" and node[-1] == "--quiet"
    assert node[node.index("--host") + 1] == "127.0.0.1" and node[node.index("--port") + 1] == "0"
    conf = nginx_conf(plan, [4001, 4002])
    assert "server 127.0.0.1:4001 " in conf and "server 127.0.0.1:4002 " in conf
    assert "listen 127.0.0.1:8080;" in conf and "proxy_set_header Upgrade $http_upgrade;" in conf
    # Management paths: loopback clients only, relayed as a plain loopback call (no forwarding
    # headers, which the gateway refuses on unsigned management calls).
    management = conf[conf.index('location ~* "^/@') :]
    management = management[: management.index("}")]
    assert "allow 127.0.0.0/8;" in management and "deny all;" in management
    assert "allow 10.0.0.0/8;" not in management
    assert 'proxy_set_header X-Forwarded-For "";' in management


async def _whoami(ws: ClientConnection) -> tuple[str, int]:
    await ws.send('{"action":"whoami"}')
    async with asyncio.timeout(10):
        reply = json.loads(await ws.recv())
    return str(reply["connectionId"]), int(reply["pid"])


async def _recv_json_or_text(ws: ClientConnection) -> str:
    async with asyncio.timeout(10):
        message = await ws.recv()
    assert isinstance(message, str)
    return message


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.timeout(120)
async def test_two_node_cluster_behind_nginx_relays_across_nodes_and_stops(tmp_path: Path) -> None:
    config = tmp_path / "portway.yaml"
    config.write_text(CONFIG)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "cluster",
        str(config),
        "--nodes",
        "2",
        "--port",
        "0",
        "--drain-timeout",
        "5",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output: list[str] = []
    clients: list[ClientConnection] = []
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "portway cluster exited before it was up:\n" + "".join(output)
                output.append(line)
                if m := re.search(r"behind http://127\.0\.0\.1:(\d+) .*files in (\S+)\)", line):
                    break
        lb_port, workdir = int(m.group(1)), Path(m.group(2))
        node_ports = []
        while len(node_ports) < 2:
            line = (await proc.stdout.readline()).decode()
            output.append(line)
            if n := re.match(r"  node-\d: http://127\.0\.0\.1:(\d+)", line):
                node_ports.append(int(n.group(1)))
        pump = asyncio.create_task(proc.stdout.read())

        # Connect through nginx until two clients are held by different nodes (round robin).
        url = f"ws://127.0.0.1:{lb_port}/dev"
        held: dict[int, tuple[ClientConnection, str]] = {}
        for _ in range(6):
            ws = await websockets.connect(url, open_timeout=10, close_timeout=5)
            clients.append(ws)
            cid, pid = await _whoami(ws)
            held.setdefault(pid, (ws, cid))
            if len(held) == 2:
                break
        assert len(held) == 2, "nginx sent every client to the same node"
        (a, a_id), (b, b_id) = held.values()

        await a.send(json.dumps({"action": "relay", "to": b_id, "text": "hello from the other node"}))
        assert await _recv_json_or_text(b) == "hello from the other node"
        assert json.loads(await _recv_json_or_text(a)) == {"relayed": 200}
        await b.send(json.dumps({"action": "shout", "text": "to everyone"}))
        got_a = await _recv_json_or_text(a)
        assert got_a == "to everyone"
        seen_b = {await _recv_json_or_text(b), await _recv_json_or_text(b)}
        assert seen_b == {"to everyone", json.dumps({"shouted": 200})}

        proc.send_signal(signal.SIGTERM)
        for ws in (a, b):
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(15):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        async with asyncio.timeout(40):
            assert await proc.wait() == 0
        output.append((await pump).decode())
    finally:
        for ws in clients:
            await ws.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = "".join(output)
    assert "Portway cluster stopped" in log and "Traceback" not in log and "killed" not in log, log
    assert all(_port_closed(port) for port in (lb_port, *node_ports))
    assert not await asyncio.to_thread(workdir.exists)


async def _start(config: Path, *extra: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "cluster", str(config), "--port", "0", *extra,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip


async def test_a_node_that_dies_stops_the_cluster_with_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "portway.yaml"
    config.write_text(CONFIG)
    proc = await _start(config, "--nodes", "2")
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(60):
            pids: list[int] = []
            while len(pids) < 2:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(output)
                output.append(line)
                if m := re.search(r"behind http://127\.0\.0\.1:(\d+) ", line):
                    lb_port = int(m.group(1))
                if n := re.match(r"  node-\d: http://127\.0\.0\.1:(\d+) \(pid (\d+)\)", line):
                    pids.append(int(n.group(2)))
        os.kill(pids[0], signal.SIGKILL)
        async with asyncio.timeout(40):
            assert await proc.wait() == 1
        output.append((await proc.stdout.read()).decode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = "".join(output)
    assert "node-1 (exit -9) exited: stopping everything" in log and "Portway cluster stopped" in log, log
    assert _port_closed(lb_port)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[1], 0)  # the other node was stopped too


async def test_missing_binaries_are_named(tmp_path: Path) -> None:
    config = tmp_path / "portway.yaml"
    config.write_text(CONFIG)
    proc = await _start(config, env={**os.environ, "REDIS_SERVER": str(tmp_path / "no-redis-server")})
    async with asyncio.timeout(30):
        out, _ = await proc.communicate()
    assert proc.returncode == 1
    assert "portway cluster: needs redis-server (Debian: apt-get install redis-server)" in out.decode()


async def test_children_stop_when_the_command_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves the command no chance to stop its children (they run in their own session
    so that Ctrl-C reaches the command only): each was started with a parent-death signal."""
    config = tmp_path / "portway.yaml"
    config.write_text(CONFIG)
    proc = await _start(config, "--nodes", "1")
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "portway cluster exited"
                if m := re.search(r"behind \S+:(\d+) \(redis \S+:(\d+)/0, files in (\S+)\)", line):
                    lb_port, redis_port, workdir = int(m.group(1)), int(m.group(2)), Path(m.group(3))
                if n := re.match(r"  node-1: http://127\.0\.0\.1:(\d+) \(pid (\d+)\)", line):
                    node_port, node_pid = int(n.group(1)), int(n.group(2))
                    break
    finally:
        proc.kill()
        await proc.wait()
    deadline = time.monotonic() + 20
    ports = (lb_port, redis_port, node_port)
    while not all(_port_closed(port) for port in ports):
        assert time.monotonic() < deadline, f"children still listening: {ports}"
        await asyncio.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        while time.monotonic() < deadline:  # the node drains, then exits
            os.kill(node_pid, 0)
            await asyncio.sleep(0.1)
    await asyncio.to_thread(shutil.rmtree, workdir)  # the command had no chance to remove it

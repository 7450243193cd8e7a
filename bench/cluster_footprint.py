"""Footprint of ``portway cluster`` (docs/operations.md, "Sizing"): start time, memory per idle
WebSocket connection on each node and in nginx, one @broadcast's delivery time to every client
(posted through nginx, fanned out across nodes), and the time the cluster takes to stop.

    .venv/bin/python bench/cluster_footprint.py [--nodes 2] [--connections 4000]

Everything on loopback; the clients run in this process (one asyncio loop). Bounded: every step
has a deadline and the cluster is stopped (SIGTERM) on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import websockets

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ROOT / "bench" / "handlers"
CONFIG = f"""\
portway: 1
apis:
  - name: ws
    type: websocket
    codeDir: {json.dumps(str(HANDLERS))}
    defaults: {{isolation: inprocess}}
    routes:
      $default: {{python: ws_bench_handler.echo, routeResponse: true}}
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def nginx_pids(workdir: Path) -> list[int]:
    master = int((workdir / "nginx.pid").read_text())
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4000)
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="portway-footprint-") as folder:
        config = Path(folder) / "portway.yaml"
        config.write_text(CONFIG)
        await measure(opts, config)


async def measure(opts: argparse.Namespace, config: Path) -> None:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "cluster", str(config), "--nodes", str(opts.nodes), "--port", "0",
        "--serve=--quiet",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    clients = []
    pump: asyncio.Task[bytes] | None = None
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "portway cluster exited"
                if m := re.search(r"behind http://127\.0\.0\.1:(\d+) .*files in (\S+)\)", line):
                    break
            node_pids = []
            while len(node_pids) < opts.nodes:
                line = (await proc.stdout.readline()).decode()
                if n := re.search(r"node-\d+: \S+ \(pid (\d+)\)", line):
                    node_pids.append(int(n.group(1)))
        start_s = time.monotonic() - started
        pump = asyncio.create_task(proc.stdout.read())
        lb, workdir = int(m.group(1)), Path(m.group(2))
        await asyncio.sleep(1)  # let start-up garbage settle before the baseline
        before = {pid: rss_kb(pid) for pid in node_pids + nginx_pids(workdir)}
        url = f"ws://127.0.0.1:{lb}/dev"
        t0 = time.monotonic()
        async with asyncio.timeout(300):
            for i in range(0, opts.connections, 200):
                batch = [
                    websockets.connect(url, open_timeout=30) for _ in range(min(200, opts.connections - i))
                ]
                clients += await asyncio.gather(*batch)
        connect_s = time.monotonic() - t0
        await asyncio.sleep(1)
        after = {pid: rss_kb(pid) for pid in node_pids + nginx_pids(workdir)}
        per_node = opts.connections / opts.nodes
        node_kb = [(after[p] - before[p]) / per_node for p in node_pids]
        nginx_kb = sum(after[p] - before.get(p, after[p]) for p in nginx_pids(workdir)) / opts.connections
        # One @broadcast through nginx: delivered by every node to its own clients.
        latencies: list[float] = []

        async def receive(ws: websockets.ClientConnection, sent: float) -> None:
            await ws.recv()
            latencies.append(time.monotonic() - sent)

        async with aiohttp.ClientSession() as http:
            sent = time.monotonic()
            receivers = [asyncio.create_task(receive(ws, sent)) for ws in clients]
            async with http.post(f"http://127.0.0.1:{lb}/dev/@broadcast", data=b"tick") as resp:
                assert resp.status == 200, resp.status
            async with asyncio.timeout(60):
                await asyncio.gather(*receivers)
        latencies.sort()
        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await proc.wait()
        stop_s = time.monotonic() - t1
        await pump
        print(
            json.dumps(
                {
                    "nodes": opts.nodes,
                    "connections": opts.connections,
                    "start_s": round(start_s, 2),
                    "connect_all_s": round(connect_s, 2),
                    "node_rss_kb_per_conn": [round(k, 2) for k in node_kb],
                    "nginx_rss_kb_per_conn": round(nginx_kb, 2),
                    "broadcast_ms": {
                        "p50": round(statistics.median(latencies) * 1000, 1),
                        "p99": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
                        "max": round(latencies[-1] * 1000, 1),
                    },
                    "stop_with_clients_s": round(stop_s, 2),
                },
                indent=2,
            )
        )
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
            rest = await pump if pump is not None else await proc.stdout.read()
            print(rest.decode(errors="replace")[-3000:], file=sys.stderr)
        for ws in clients:
            ws.transport.abort()


if __name__ == "__main__":
    asyncio.run(main())

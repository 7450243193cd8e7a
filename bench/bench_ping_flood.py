"""A well-behaved WebSocket client's echo latency while other clients flood pings (issue 11 item 6).

    .venv/bin/python bench/bench_ping_flood.py                 # 3 runs of 10 s per phase (~3 min)
    .venv/bin/python bench/bench_ping_flood.py --quick         # 1 run of 4 s per phase
    .venv/bin/python bench/bench_ping_flood.py --flooders 4 --reconnect-delay 0

For each server setting (the default ``controlFrameThrottle`` budget, and ``null``: no budget, as
before the fix) ``bench/servers/portway_ws.py`` is started alone on core 0 and, with the load on
core 1, one well-behaved client sends the benchmark's 79-byte JSON message every ``--interval``
seconds (paced: latency, not throughput) through the ``$default`` echo route and times each round
trip:

* **quiet**: nobody else connected;
* **flood**: ``--flooders`` processes (``nice 19`` unless ``--flooder-nice``, so the measuring
  client keeps its share of core 1) each write masked ping frames as fast as the socket takes
  them (60 KB per write); a flooder that is closed (1008) reconnects after ``--reconnect-delay``
  seconds and floods again.

Target (the issue's "Done when"): the client's echo p99 during the flood within 2x its quiet p99,
with the budget on. Output: a markdown table on stdout and the raw figures in
``bench/out/ping-flood-<UTC>.json``. Every child is killed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
HOST = "127.0.0.1"
MESSAGE = '{"action":"message","data":"hello from the websocket benchmark client hello f"}'
SERVER_CORE, LOAD_CORE = "0", "1"
PING = bytes([0x89, 0x80]) + b"\x00\x00\x00\x00"  # masked, empty payload (key 0: payload unchanged)
HANDSHAKE = (
    "GET /dev HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(core: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", core, *argv] if shutil.which("taskset") and os.cpu_count() != 1 else argv


# -- the flooder (a child process) -----------------------------------------------------------------


async def drain_replies(reader: asyncio.StreamReader) -> None:
    """Read (and drop) the server's pongs until it closes the connection."""
    with contextlib.suppress(OSError):
        while await reader.read(65536):
            pass


async def flood(port: int, duration: float, reconnect_delay: float) -> dict[str, int]:
    """Connect, write pings until the server closes, reconnect; for ``duration`` seconds."""
    block = PING * (60_000 // len(PING))
    stats = {"connections": 0, "closed_by_server": 0, "bytes_written": 0}
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        stats["connections"] += 1
        writer.write(HANDSHAKE.format(host=HOST, port=port).encode())
        try:
            async with asyncio.timeout(5):
                await reader.readuntil(b"\r\n\r\n")

            replies = asyncio.create_task(drain_replies(reader))
            while not replies.done() and time.monotonic() < deadline:
                writer.write(block)
                await writer.drain()
                stats["bytes_written"] += len(block)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await replies
            if replies.done():
                stats["closed_by_server"] += 1
            else:
                replies.cancel()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            stats["closed_by_server"] += 1
        finally:
            writer.close()
        if reconnect_delay:
            await asyncio.sleep(reconnect_delay)
    return stats


def flooder_main(port: int, duration: float, reconnect_delay: float, nice: int) -> int:
    os.nice(nice)
    stats = asyncio.run(flood(port, duration, reconnect_delay))
    print(json.dumps(stats), flush=True)
    return 0


# -- the well-behaved client -------------------------------------------------------------------------


async def echo_latencies(port: int, duration: float, interval: float) -> list[float]:
    """Round-trip times (ms) of paced echo messages for ``duration`` seconds."""
    import aiohttp

    latencies: list[float] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://{HOST}:{port}/dev") as ws:
        for _ in range(20):  # warm-up
            await ws.send_str(MESSAGE)
            await ws.receive()
        deadline = time.monotonic() + duration
        next_send = time.monotonic()
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await ws.send_str(MESSAGE)
            async with asyncio.timeout(10):
                reply = await ws.receive()
            latencies.append((time.perf_counter() - started) * 1000)
            assert reply.data == MESSAGE, reply
            next_send += interval
            await asyncio.sleep(max(0.0, next_send - time.monotonic()))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "count": len(latencies),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "max_ms": round(max(latencies), 3),
    }


# -- orchestration ---------------------------------------------------------------------------------------


class Server:
    def __init__(self, budget: bool) -> None:
        self.port = free_port()
        argv = [sys.executable, str(BENCH / "servers" / "portway_ws.py"), "--port", str(self.port)]
        if not budget:
            argv.append("--no-control-budget")
        OUT.mkdir(exist_ok=True)
        # A file, not a pipe nobody reads: a full pipe would block the server's logging.
        self.log = OUT / f"ping-flood-server-{self.port}.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(pinned(SERVER_CORE, argv), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while "listening" not in self.log.read_text():  # "Portway (WebSocket bench) listening on ..."
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_phase(port: int, args: argparse.Namespace, flooders: int) -> dict[str, Any]:
    children = [
        subprocess.Popen(
            pinned(
                LOAD_CORE,
                [
                    sys.executable,
                    __file__,
                    "--flooder",
                    str(port),
                    "--duration",
                    str(args.duration + 2),
                    "--reconnect-delay",
                    str(args.reconnect_delay),
                    "--flooder-nice",
                    str(args.flooder_nice),
                ],
            ),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(flooders)
    ]
    try:
        if children:
            time.sleep(1.0)  # the flood is under way before measuring
        latencies = asyncio.run(echo_latencies(port, args.duration, args.interval))
        flood_stats = []
        for child in children:
            out, _ = child.communicate(timeout=args.duration + 30)
            flood_stats.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return {"latency": summary(latencies), "flooders": flood_stats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flooder", type=int, help=argparse.SUPPRESS)  # child mode: flood this port
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--interval", type=float, default=0.005, help="seconds between echo messages")
    parser.add_argument("--flooders", type=int, default=1)
    parser.add_argument("--reconnect-delay", type=float, default=0.0)
    parser.add_argument("--flooder-nice", type=int, default=19, help="niceness of the flooders")
    parser.add_argument("--quick", action="store_true", help="1 run, 4 s phases")
    args = parser.parse_args(argv)
    if args.flooder is not None:
        return flooder_main(args.flooder, args.duration, args.reconnect_delay, args.flooder_nice)
    if args.quick:
        args.runs, args.duration = 1, 4.0
    os.sched_setaffinity(0, {int(LOAD_CORE)}) if hasattr(os, "sched_setaffinity") else None
    results: dict[str, list[dict[str, Any]]] = {}
    for budget in (True, False):
        name = "budget (default)" if budget else "no budget (null)"
        for run in range(args.runs):
            server = Server(budget)
            try:
                quiet = run_phase(server.port, args, 0)
                flooded = run_phase(server.port, args, args.flooders)
            finally:
                server.stop()
            entry = {"run": run, "quiet": quiet, "flood": flooded}
            results.setdefault(name, []).append(entry)
            print(f"{name} run {run}: quiet {quiet['latency']} flood {flooded['latency']}", flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT.mkdir(exist_ok=True)
    out = OUT / f"ping-flood-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(
        f"\n{args.flooders} flooder(s) at nice {args.flooder_nice}, reconnect delay "
        f"{args.reconnect_delay} s, {args.runs} run(s) of {args.duration} s per phase"
    )
    print("| server | quiet p50 / p99 ms | flood p50 / p99 ms | p99 flood/quiet | flooders closed |")
    print("|---|---:|---:|---:|---:|")
    for name, entries in results.items():
        qp50 = statistics.median(e["quiet"]["latency"]["p50_ms"] for e in entries)
        qp99 = statistics.median(e["quiet"]["latency"]["p99_ms"] for e in entries)
        fp50 = statistics.median(e["flood"]["latency"]["p50_ms"] for e in entries)
        fp99 = statistics.median(e["flood"]["latency"]["p99_ms"] for e in entries)
        closed = sum(s["closed_by_server"] for e in entries for s in e["flood"]["flooders"])
        ratio = fp99 / qp99
        print(f"| {name} | {qp50:.2f} / {qp99:.2f} | {fp50:.2f} / {fp99:.2f} | {ratio:.2f}x | {closed} |")
    print(f"\nraw figures: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

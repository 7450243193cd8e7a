"""Slowloris: do thousands of trickling connections hurt normal requests? (issue 11, item 4)

Starts a gateway process (``portway serve``, port 0, a MOCK route), measures a well-behaved
client (keep-alive requests, and requests each on a new connection) alone, then again while
``--conns`` connections each send half a request head and trickle one more byte every
``--trickle`` seconds. Reports latencies, failures, and how many trickling connections the
gateway closed by itself within the header timeout (all of them, when it works).

    .venv/bin/python bench/bench_slowloris.py                  # 5,000 connections, 10 s header timeout
    .venv/bin/python bench/bench_slowloris.py --conns 1000 --header-timeout 3

Bounded: every phase has a deadline; loopback only. Needs ``ulimit -n`` above ``--conns`` + 100
for this process (the gateway raises its own soft limit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
portway: 1
apis:
  - name: api
    type: rest
    routes:
      GET /health:
        mock: {status: 200, body: '{"ok":true}'}
"""


async def start_gateway(config: Path, header_timeout: float) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", str(config), "--port", "0",
        "--header-timeout", str(header_timeout), "--log-level", "WARNING",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise SystemExit("gateway exited before listening")
            if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                return proc, int(m.group(1))


async def well_behaved(port: int, requests: int) -> dict[str, float]:
    """``requests`` keep-alive GETs, then ``requests // 4`` GETs each on a new connection."""
    url = f"http://127.0.0.1:{port}/dev/health"
    kept: list[float] = []
    fresh: list[float] = []
    failures = 0
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for _ in range(requests):
            start = time.perf_counter()
            try:
                async with http.get(url) as resp:
                    await resp.read()
                    failures += resp.status != 200
            except (aiohttp.ClientError, TimeoutError):
                failures += 1
            kept.append((time.perf_counter() - start) * 1000)
    for _ in range(requests // 4):
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)
        ) as http:
            start = time.perf_counter()
            try:
                async with http.get(url) as resp:
                    await resp.read()
                    failures += resp.status != 200
            except (aiohttp.ClientError, TimeoutError):
                failures += 1
            fresh.append((time.perf_counter() - start) * 1000)

    def pct(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=100)[q - 1], 2)

    return {
        "keepalive_p50_ms": pct(kept, 50),
        "keepalive_p99_ms": pct(kept, 99),
        "new_conn_p50_ms": pct(fresh, 50),
        "new_conn_p99_ms": pct(fresh, 99),
        "failures": failures,
    }


class Loris:
    """One trickling connection: half a head, then a byte every ``trickle`` seconds."""

    def __init__(self) -> None:
        self.closed_at: float | None = None
        self.opened = False

    async def run(self, port: int, trickle: float, stop: asyncio.Event) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        self.opened = True
        try:
            writer.write(b"GET /dev/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(reader.read(1024), trickle)
                except TimeoutError:
                    writer.write(b"a")  # still "sending headers"
                    continue
                if not data:
                    break
            else:
                return
            self.closed_at = time.monotonic()
        except OSError:
            self.closed_at = time.monotonic()
        finally:
            writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=5000)
    parser.add_argument("--trickle", type=float, default=2.0, help="seconds between trickled bytes")
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=400)
    options = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < options.conns + 100:
        raise SystemExit(f"ulimit -n {hard} is too low for {options.conns} connections")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "portway.yaml"
        config.write_text(CONFIG)
        proc, port = await start_gateway(config, options.header_timeout)
        try:
            await well_behaved(port, 50)  # warm-up
            quiet = await well_behaved(port, options.requests)
            stop = asyncio.Event()
            lorises = [Loris() for _ in range(options.conns)]
            started = time.monotonic()
            tasks = []
            for i in range(0, options.conns, 250):  # open in batches: the listen backlog is 1,024
                batch = lorises[i : i + 250]
                tasks += [asyncio.create_task(lo.run(port, options.trickle, stop)) for lo in batch]
                await asyncio.sleep(0.05)
            opened_in = time.monotonic() - started
            opened = sum(lo.opened for lo in lorises)
            loaded = await well_behaved(port, options.requests)
            # Wait (bounded) until the gateway has closed every trickling connection.
            deadline = started + options.header_timeout + 15
            while time.monotonic() < deadline:
                if sum(lo.closed_at is not None for lo in lorises) >= opened:
                    break
                await asyncio.sleep(0.1)
            closed = [lo.closed_at - started for lo in lorises if lo.closed_at is not None]
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            after = await well_behaved(port, options.requests)
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
    result = {
        "conns": options.conns,
        "opened": opened,
        "opened_in_s": round(opened_in, 2),
        "header_timeout_s": options.header_timeout,
        "closed_by_gateway": len(closed),
        "last_closed_after_s": round(max(closed), 2) if closed else None,
        "quiet": quiet,
        "during_slowloris": loaded,
        "after": after,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())

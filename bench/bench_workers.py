"""All cores: ``portway serve --workers 2`` vs ``--workers 1`` req/s, with wrk, in one run.

    .venv/bin/python bench/bench_workers.py [--runs 3] [--duration 10] [--connections 128]

Starts a private ``redis-server`` (``--workers`` > 1 needs Redis) and, for each N in (1, 2), the
real CLI ``python -m server serve CONFIG --workers N --redis-url ... --quiet`` serving a MOCK
route with the account throttle off (so a request makes no store call: this measures the
gateway's own scaling, not Redis). Targets are interleaved within each run (N=1, then N=2), each
run after a 2 s warm-up and a wait for a quiet machine. wrk is not pinned (``-t2``): on a
2-core machine the load generator has to share the cores with the workers; its CPU is recorded.

Writes ``bench/results/workers-<UTC>.json`` and prints a markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_http import free_port, parse_wrk, wait_for_quiet  # noqa: E402

CONFIG = """\
portway: 1
throttle: off
apis:
  - name: bench
    type: rest
    stages: {dev: {}}
    routes:
      GET /mock:
        mock: {status: 200, headers: {Content-Type: application/json}, body: '{"ok":true}'}
"""


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(x) for x in out.split()]


def start(
    config: Path, *args: str, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """``portway serve CONFIG --port P --quiet ARGS`` (after ``prefix``, e.g. taskset); its port."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "server",
            "serve",
            str(config),
            "--port",
            str(port),
            "--quiet",
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"portway {' '.join(args)} exited before listening")
        if re.search(r"listening on http://", line):
            return proc, port
    raise RuntimeError("portway did not start in 60 s")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wrk(
    port: int, duration: int, connections: int, pids: list[int], *, load: tuple[str, ...] = ("wrk", "-t2")
) -> dict[str, Any]:
    """Warm up 2 s, then measure ``duration`` s; server CPU over ``pids``, the load tool's own."""
    url = f"http://127.0.0.1:{port}/dev/mock"
    subprocess.run([*load, f"-c{connections}", "-d2s", url], capture_output=True, check=True)
    ticks = os.sysconf("SC_CLK_TCK")
    before = _cpu_ticks(pids)
    start = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    tool = subprocess.Popen(
        [*load, f"-c{connections}", f"-d{duration}s", "--latency", url], stdout=subprocess.PIPE, text=True
    )
    out, _ = tool.communicate()
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    result = parse_wrk(out)
    result["server_cpu_pct"] = round(100 * (_cpu_ticks(pids) - before) / ticks / elapsed, 1)
    result["wrk_cpu_pct"] = round(100 * wrk_cpu / elapsed, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=128)
    args = parser.parse_args()
    # SIGTERM runs the finally blocks too: no gateway left behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "portway.yaml"
        config.write_text(CONFIG)
        redis_port = free_port()
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        redis_url = f"redis://127.0.0.1:{redis_port}"
        try:
            time.sleep(0.5)  # a benchmark script, not a test: redis-server starts in milliseconds
            for run in range(args.runs):
                for workers in (1, 2):
                    proc, port = start(config, "--workers", str(workers), "--redis-url", redis_url)
                    try:
                        pids = [proc.pid, *children(proc.pid)]
                        noise_wait = wait_for_quiet(20.0, 60.0)
                        result = wrk(port, args.duration, args.connections, pids)
                        result["waited_for_quiet_s"] = noise_wait
                        results[workers].append(result)
                        print(f"run {run + 1} workers={workers}: {result['rps']:,.0f} req/s", flush=True)
                    finally:
                        stop(proc)
        finally:
            redis.terminate()
            redis.wait()
    rps = {n: statistics.median(r["rps"] for r in results[n]) for n in results}
    ratios = [b["rps"] / a["rps"] for a, b in zip(results[1], results[2], strict=True)]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = ROOT / "bench" / "results" / f"workers-{stamp}.json"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    out.write_text(
        json.dumps({"args": vars(args), "commit": commit.stdout.strip(), "results": results}, indent=1) + "\n"
    )
    print(f"\nraw: {out.relative_to(ROOT)}\n")
    print("| workers | req/s (median) | min - max | p50 ms | p99 ms | server CPU % | wrk CPU % |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in (1, 2):
        rows = results[n]
        print(
            f"| {n} | {rps[n]:,.0f} "
            f"| {min(r['rps'] for r in rows):,.0f} - {max(r['rps'] for r in rows):,.0f} "
            f"| {statistics.median(r.get('p50_ms', 0) for r in rows)} "
            f"| {statistics.median(r.get('p99_ms', 0) for r in rows)} "
            f"| {statistics.median(r['server_cpu_pct'] for r in rows)} "
            f"| {statistics.median(r['wrk_cpu_pct'] for r in rows)} |"
        )
    print(f"\nN=2 / N=1: **{statistics.median(ratios):.2f}x** (median of per-run ratios {ratios})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

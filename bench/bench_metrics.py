"""What ``/@metrics``' per-route counters and histograms cost: req/s with them on vs off, one run.

    .venv/bin/python bench/bench_metrics.py [--runs 5] [--duration 10] [--connections 64]

One gateway process (``portway serve``, embedded store, account throttle off) serving a MOCK route:
the cheapest request there is, so the per-request cost of the metrics is the largest share it can
be. ``PORTWAY_REQUEST_METRICS=0`` turns them off (the throttling and WebSocket counters, plain ints
that were there before, stay). Layout A of ceilings.md: the gateway pinned to core 0, wrk (``-t1``)
to core 1. Targets alternate within each run (on, off), each after a 2 s warm-up and a wait for a
quiet machine. Prints a table for bench/RESULTS.md and writes ``bench/results/metrics-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import wait_for_quiet
from bench_workers import CONFIG, ROOT, start, stop, wrk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    # SIGTERM runs the finally blocks too: no gateway left behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    targets = {"on": "1", "off": "0"}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "portway.yaml"
        config.write_text(CONFIG)
        for run in range(args.runs):
            for name, value in targets.items():
                proc, port = start(
                    config, prefix=("taskset", "-c", "0"), env={"PORTWAY_REQUEST_METRICS": value}
                )
                try:
                    waited = wait_for_quiet(20.0, 60.0)
                    result = wrk(
                        port,
                        args.duration,
                        args.connections,
                        [proc.pid],
                        load=("taskset", "-c", "1", "wrk", "-t1"),
                    )
                    result["waited_for_quiet_s"] = waited
                    results[name].append(result)
                    print(f"run {run + 1} metrics {name}: {result['rps']:,.0f} req/s", flush=True)
                finally:
                    stop(proc)
    ratios = [on["rps"] / off["rps"] for on, off in zip(results["on"], results["off"], strict=True)]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = ROOT / "bench" / "results" / f"metrics-{stamp}.json"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    out.write_text(
        json.dumps({"args": vars(args), "commit": commit.stdout.strip(), "results": results}, indent=1) + "\n"
    )
    print(f"\nraw: {out.relative_to(ROOT)}\n")
    print("| request metrics | req/s (median) | min - max | p50 ms | p99 ms | server CPU % | wrk CPU % |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        rps = [r["rps"] for r in rows]
        print(
            f"| {name} | {statistics.median(rps):,.0f} | {min(rps):,.0f} - {max(rps):,.0f} "
            f"| {statistics.median(r.get('p50_ms', 0) for r in rows)} "
            f"| {statistics.median(r.get('p99_ms', 0) for r in rows)} "
            f"| {statistics.median(r['server_cpu_pct'] for r in rows)} "
            f"| {statistics.median(r['wrk_cpu_pct'] for r in rows)} |"
        )
    cost = 1 - statistics.median(ratios)
    print(f"\non / off: **{statistics.median(ratios):.3f}x** (cost {cost:.1%}; per-run ratios {ratios})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 16's stage cache benchmark: a cached GET against the same HTTP_PROXY route uncached, on the
same Portway process, in one run.

    .venv/bin/python bench/bench_cache.py              # 5 runs x 10 s per target, embedded store
    .venv/bin/python bench/bench_cache.py --redis      # entries kept in a private redis-server
    .venv/bin/python bench/bench_cache.py --quick      # smoke run: 1 run x 3 s
    .venv/bin/python bench/bench_cache.py --report bench/out/cache-<UTC>.json

One invocation starts, on 127.0.0.1 and free ports, pinned like layout B of
``/work/shared/reference/ceilings.md``: ``servers/backend.py`` (the upstream) and, with
``--redis``, a private ``redis-server`` (nothing on disk) on core 1; one Portway process,
``servers/portway_server.py --cache-bench`` (see its ``cache_config``), alone on core 0; the load,
``taskset -c 1 wrk -t1 -c64 -dDs --latency URL``, core 1.

Targets (one route, ``ANY /proxy/{proxy+}`` to the backend; the account bucket off, so neither
pays a throttle call):

* ``proxy``:  ``/dev/proxy/hello``, stage ``dev`` without a cache: every request goes to the backend;
* ``cached``: ``/cached/proxy/hello``, stage ``cached`` with the stage cache: the first request
  fills the entry, every later one is answered from the store without calling the backend.

It checks both answer 200 with the backend's body, then measures both per run, alternating which
goes first (bench_http's machinery: quiet machine, warm-up, per-process CPU, noisy attempts
redone). The verdict: the cached req/s at least 2x the uncached one (median of per-run ratios), no
error and no non-2xx.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import (
    HOST,
    LOAD_CORE,
    SERVER_CORE,
    SERVERS,
    Attempt,
    Child,
    Children,
    LoadTool,
    RunDefaults,
    RunRecord,
    check_alive,
    cpu_us_per_request,
    finish_run_args,
    free_port,
    handle_signals,
    load_results,
    measure,
    median,
    pick_tool,
    run_line,
    run_meta,
    run_parser,
    save_results,
    stopping,
    target_summary,
    wait_ready,
)
from bench_throttle import redis_command, wait_redis

TARGET_RATIO = 2.0  # cached req/s over uncached, issue 16


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    path: str


PROXY = Target("proxy", "REST HTTP_PROXY, no cache", "/dev/proxy/hello")
CACHED = Target("cached", "REST HTTP_PROXY, stage cache hit", "/cached/proxy/hello")
TARGETS = (PROXY, CACHED)


def summarize(records: list[RunRecord]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for target in TARGETS:
        kept = [r.kept for r in records if r.target == target.key]
        if not kept:
            continue
        summary[target.key] = {
            "label": target.label,
            "path": target.path,
            **target_summary(kept),
            "noise_pct_median": median([a.cpu.get("noise", 0.0) for a in kept]),
            "requests": sum(int(a.raw.get("requests", 0)) for a in kept),
            "non_2xx_all_attempts": sum(
                int(a.raw.get("non_2xx", 0)) + int(a.raw.get("errors", 0))
                for r in records
                if r.target == target.key
                for a in r.attempts
            ),
        }
    pairs: list[tuple[int, Attempt, Attempt]] = []
    for r in records:
        base = next((x for x in records if x.target == "proxy" and x.run == r.run), None)
        if r.target == "cached" and base is not None and base.kept.rps:
            pairs.append((r.run, r.kept, base.kept))
    if pairs:
        summary["ratio"] = {
            "runs": [run for run, _, _ in pairs],
            "rps_per_run": [round(c.rps / p.rps, 3) for _, c, p in pairs],
            "noise_per_run": [max(c.cpu.get("noise", 0.0), p.cpu.get("noise", 0.0)) for _, c, p in pairs],
            "rps": round(median([c.rps / p.rps for _, c, p in pairs]), 3),
        }
    return summary


def verdict(summary: dict[str, Any]) -> str:
    ratio = summary.get("ratio")
    if not ratio:
        return "incomplete"
    if not all(summary[t.key]["non_2xx_all_attempts"] == 0 for t in TARGETS):
        return "INVALID (errors or non-2xx responses)"
    return "met" if ratio["rps"] >= TARGET_RATIO else "NOT met"


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        run_line(
            meta, f"Portway alone on core {SERVER_CORE}; backend, store and load tool on core {LOAD_CORE}"
        ),
        "",
        f"Store: {meta.get('store', 'embedded')}.",
        "",
        "| target | req/s (median) | min - max | p50 ms | p99 ms | Portway CPU % | Portway CPU us/req "
        "| backend CPU % | noise % (median / max) | requests | errors / non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in TARGETS:
        s = summary.get(target.key)
        if s is None:
            continue
        lines.append(
            f"| {s['label']} (`{s['path']}`) | {s['rps']:,.0f} | {s['rps_min']:,.0f} - {s['rps_max']:,.0f} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['server_cpu_pct']:.0f} "
            f"| {s['server_us_per_req']:.1f} | {s['backend_cpu_pct']:.0f} "
            f"| {s['noise_pct_median']:.0f} / {s['noise_pct_max']:.0f} | {s['requests']:,} "
            f"| {s['errors']} / {s['non_2xx']} |"
        )
    ratio = summary.get("ratio")
    if ratio:
        per_run = "; ".join(
            f"{run}: {x:.3f} (noise {n:.0f} %)"
            for run, x, n in zip(ratio["runs"], ratio["rps_per_run"], ratio["noise_per_run"], strict=True)
        )
        lines += [
            "",
            f"Ratio cached / uncached req/s (median of per-run ratios): **{ratio['rps']:.2f}x**. "
            f"Per run: {per_run}.",
            "",
            f"Target (cached GET >= {TARGET_RATIO:.0f}x the uncached HTTP_PROXY route's req/s; "
            f"no error and no non-2xx in any attempt): **{verdict(summary)}**.",
        ]
    return "\n".join(lines) + "\n"


DEFAULTS = RunDefaults(runs=5, redo=2, quiet_timeout=60.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = run_parser(__doc__.splitlines()[0] if __doc__ else None, DEFAULTS)
    parser.add_argument("--redis", action="store_true", help="keep the cache in a private redis-server")
    parser.add_argument("--redis-server", default="redis-server", help="the redis-server binary")
    return finish_run_args(parser, parser.parse_args(argv), DEFAULTS)


def report(path: Path) -> int:
    meta, records = load_results(path)
    table = markdown(summarize(records), meta)
    path.with_suffix(".md").write_text(table)
    print(table)
    return 0


def get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(urllib.request.Request(url), timeout=10) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def check_targets(base: str) -> None:
    """Both answer 200 with the backend's body (the cached one twice: a fill, then a hit; the
    backend's CPU in the table shows the hits never reach it)."""
    for target in (PROXY, CACHED, CACHED):
        status, body = get(base + target.path)
        if status != 200 or b'"ok":true' not in body:
            raise RuntimeError(f"{target.path} answered {status} {body[:300]!r}")
    print("check: both targets 200 with the backend's body", flush=True)


def describe(attempt: Attempt) -> str:
    cpu, raw = attempt.cpu, attempt.raw
    target = next(t.key for t in TARGETS if f"{t.path} " in attempt.command + " ")
    return (
        f"{target:<6} {attempt.rps:>9,.0f} req/s  {cpu_us_per_request(attempt):5.1f} us/req  "
        f"p50 {attempt.p50_ms:6.2f} ms  p99 {attempt.p99_ms:6.2f} ms  "
        f"cpu portway {cpu['server']:.0f}% backend {cpu['backend']:.0f}% noise {cpu['noise']:.0f}%  "
        f"non-2xx {raw.get('non_2xx', 0)} errors {raw.get('errors', 0)}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    handle_signals()
    tool_name = pick_tool(args)
    if tool_name is None:
        return 2
    redis_bin = shutil.which(args.redis_server) if args.redis else None
    if args.redis and redis_bin is None:
        print(f"{args.redis_server} is not installed", file=sys.stderr)
        return 2
    tool = LoadTool(tool_name, args.connections)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    children = Children(args.out / f"logs-cache-{stamp}")
    py = sys.executable
    ports = {name: free_port() for name in ("redis", "backend", "portway")}
    backend_url = f"http://{HOST}:{ports['backend']}"
    meta = run_meta(
        args,
        tool,
        argv,
        f"B: Portway on core {SERVER_CORE}; backend, store and load tool on core {LOAD_CORE}",
    )
    meta["target_ratio"] = TARGET_RATIO
    meta["store"] = "redis (private redis-server, core 1)" if args.redis else "embedded"
    records: list[RunRecord] = []
    with stopping(children, meta):
        portway = [py, str(SERVERS / "portway_server.py"), "--port", str(ports["portway"])]
        portway += ["--backend", backend_url, "--cache-bench", *args.portway_arg]
        specs: dict[str, tuple[list[str], int]] = {
            "backend": ([py, str(SERVERS / "backend.py"), "--port", str(ports["backend"])], LOAD_CORE),
        }
        if redis_bin is not None:
            redis = [
                redis_bin,
                "--port",
                str(ports["redis"]),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            specs["redis"] = (redis, LOAD_CORE)
            portway += ["--redis-url", f"redis://{HOST}:{ports['redis']}/0"]
        specs["portway"] = (portway, SERVER_CORE)
        started: dict[str, Child] = {}
        for name, (argv_, core) in specs.items():
            started[name] = children.start(name, argv_, core)
            meta["servers"][name] = f"taskset -c {core} " + " ".join(argv_)
            if name == "redis":
                wait_redis(started[name], ports["redis"])
            else:
                wait_ready(started[name], f"http://{HOST}:{ports[name]}/")
            print(f"started {name} (pid {started[name].pid}, core {core}, port {ports[name]})", flush=True)
        if redis_bin is not None:
            info = redis_command(ports["redis"], "INFO", "server").decode()
            meta["machine"]["versions"]["redis"] = next(
                (ln.split(":", 1)[1] for ln in info.splitlines() if ln.startswith("redis_version:")), "?"
            )
        base = f"http://{HOST}:{ports['portway']}"
        check_targets(base)
        trees = {"server": started["portway"].pid, "backend": started["backend"].pid}
        if "redis" in started:
            trees["redis"] = started["redis"].pid
        for run in range(1, args.runs + 1):
            order = TARGETS if run % 2 else TARGETS[::-1]  # alternate who goes first
            for target in order:
                records.append(
                    measure(tool, base + target.path, trees, args, RunRecord(target.key, run), describe)
                )
                check_alive(started)
    if meta.get("interrupted") and not records:
        return 130
    summary = summarize(records)
    summary["verdict"] = verdict(summary)
    save_results(args.out, f"cache-{stamp}", meta, summary, records, markdown(summary, meta))
    return 130 if meta.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue #9's authorizer benchmark: the HTTP_PROXY route behind a cached Lambda authorizer against
the same route without auth, in one run.

    .venv/bin/python bench/bench_auth.py              # 5 runs x 10 s per target, store on Redis
    .venv/bin/python bench/bench_auth.py --embedded   # the same with the embedded store
    .venv/bin/python bench/bench_auth.py --quick      # smoke run: 1 run x 3 s
    .venv/bin/python bench/bench_auth.py --report bench/out/auth-<UTC>.json

One invocation starts, on 127.0.0.1 and on free ports, pinned like ``bench_throttle.py`` (layout B
of ``/work/shared/reference/ceilings.md``): a private ``redis-server`` (unless ``--embedded``), the
backend and the load tool on core 1; one Portway process, ``servers/portway_server.py
--auth-bench``, alone on core 0.

Targets, both on the same Portway process, both sent the same request bytes
(``Authorization: Bearer bench``):

* ``off``:  ``/dev/proxy/hello``, no authorizer (and the account bucket off: no store call);
* ``auth``: ``/dev/authed/hello``, a TOKEN Lambda authorizer with ``resultTtlInSeconds: 3600``:
  the handler runs once (the check before measuring); each measured request reads the cached
  result from the store (one ``GET``: the Redis commandstats around every window count them) and
  evaluates its policy against the request's method ARN.

Ratios (CPU per request of ``auth`` / ``off``, and req/s) are taken per run; the target is at most
1.15x the CPU per request (issue #9), over the runs where neither side had more than
``--max-noise`` % of a core of noise, with zero socket errors and zero non-2xx responses.
Results: ``bench/out/auth-<UTC>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
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
from bench_throttle import (
    HeaderLoadTool,
    commandstats,
    get,
    per_request_calls,
    redis_command,
    redis_us_per_request,
    store_work,
    wait_redis,
)

TARGET_COST = 1.15  # auth CPU per request / off CPU per request, at most
TOKEN_HEADER = "Authorization: Bearer bench"


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    path: str


OFF = Target("off", "HTTP_PROXY, no authorizer", "/dev/proxy/hello")
AUTH = Target("auth", "HTTP_PROXY, cached Lambda TOKEN authorizer", "/dev/authed/hello")
TARGETS = (OFF, AUTH)


def summarize(records: list[RunRecord], max_noise: float) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for target in TARGETS:
        kept = [r.kept for r in records if r.target == target.key]
        if not kept:
            continue
        summary[target.key] = {
            "label": target.label,
            "path": target.path,
            **target_summary(kept),
            "redis_us_per_req": median([redis_us_per_request(a) for a in kept]),
            "noise_pct_median": median([a.cpu.get("noise", 0.0) for a in kept]),
            "requests": sum(int(a.raw.get("requests", 0)) for a in kept),
            "store_calls_per_request": per_request_calls(kept[-1]),
            "non_2xx_all_attempts": sum(
                int(a.raw.get("non_2xx", 0)) + int(a.raw.get("errors", 0))
                for r in records
                if r.target == target.key
                for a in r.attempts
            ),
        }
    if "off" not in summary or "auth" not in summary:
        return summary
    pairs: list[tuple[int, Attempt, Attempt]] = []
    for r in records:
        base = next((x for x in records if x.target == "off" and x.run == r.run), None)
        if r.target == "auth" and base is not None and base.kept.rps and r.kept.rps:
            pairs.append((r.run, r.kept, base.kept))

    def cost(auth: Attempt, off: Attempt) -> float:
        ours = cpu_us_per_request(off)
        return round(cpu_us_per_request(auth) / ours, 3) if ours else 0.0

    quiet = [p for p in pairs if max(p[1].cpu.get("noise", 0.0), p[2].cpu.get("noise", 0.0)) <= max_noise]
    summary["ratio"] = {
        "runs": [run for run, _, _ in pairs],
        "rps_per_run": [round(a.rps / o.rps, 3) for _, a, o in pairs],
        "cpu_cost_per_run": [cost(a, o) for _, a, o in pairs],
        "noise_per_run": [max(a.cpu.get("noise", 0.0), o.cpu.get("noise", 0.0)) for _, a, o in pairs],
        "rps": median([a.rps / o.rps for _, a, o in pairs]),
        "cpu_cost": median([cost(a, o) for _, a, o in pairs]),
        "quiet_runs": len(quiet),
        "rps_quiet": median([a.rps / o.rps for _, a, o in quiet]),
        "cpu_cost_quiet": median([cost(a, o) for _, a, o in quiet]),
    }
    return summary


def verdict(summary: dict[str, Any], max_noise: float) -> str:
    ratio = summary.get("ratio")
    if not ratio:
        return "incomplete"
    if any(summary[t.key]["non_2xx_all_attempts"] for t in TARGETS):
        return "INVALID (errors or non-2xx responses)"
    if ratio["quiet_runs"] == 0:
        return f"inconclusive: no run with both sides under {max_noise:.0f} % noise"
    return "met" if ratio["cpu_cost_quiet"] <= TARGET_COST else "NOT met"


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    store = meta.get("store", "redis")
    lines = [
        run_line(
            meta, f"Portway alone on core {SERVER_CORE}; backend, store and load tool on core {LOAD_CORE}"
        ),
        f"Store: {store}.",
        "",
        "| target | req/s (median) | min - max | p50 ms | p99 ms | Portway CPU % | Portway CPU us/req "
        "| Redis CPU us/req | noise % (median / max) | requests | errors / non-2xx "
        "| store calls per request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for target in TARGETS:
        s = summary.get(target.key)
        if s is None:
            continue
        calls = ", ".join(f"{name} {n:g}" for name, n in s["store_calls_per_request"].items()) or "none"
        lines.append(
            f"| {s['label']} (`{s['path']}`) | {s['rps']:,.0f} | {s['rps_min']:,.0f} - {s['rps_max']:,.0f} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['server_cpu_pct']:.0f} "
            f"| {s['server_us_per_req']:.1f} | {s['redis_us_per_req']:.1f} "
            f"| {s['noise_pct_median']:.0f} / {s['noise_pct_max']:.0f} | {s['requests']:,} "
            f"| {s['errors']} / {s['non_2xx']} | {calls} |"
        )
    ratio = summary.get("ratio")
    if ratio:
        max_noise = meta.get("max_noise_pct", 20.0)
        per_run = "; ".join(
            f"{r}: {c:.3f}, {x:.3f}, {n:.0f}"
            for r, x, c, n in zip(
                ratio["runs"],
                ratio["rps_per_run"],
                ratio["cpu_cost_per_run"],
                ratio["noise_per_run"],
                strict=True,
            )
        )
        quiet = (
            f"CPU per request {ratio['cpu_cost_quiet']:.3f}x, req/s {ratio['rps_quiet']:.3f}x"
            if ratio["quiet_runs"]
            else "n/a"
        )
        lines += [
            "",
            "Ratio auth / off (median of per-run ratios): "
            f"Portway CPU per request **{ratio['cpu_cost']:.3f}x**, "
            f"req/s {ratio['rps']:.3f}x; over the {ratio['quiet_runs']} of {len(ratio['runs'])} runs with at "
            f"most {max_noise:.0f} % noise: {quiet}. Per run (CPU; req/s; noise %): {per_run}.",
            "",
            f"Target (auth CPU per request <= {TARGET_COST}x off; no socket error and no non-2xx response in "
            f"any attempt): **{verdict(summary, max_noise)}**.",
        ]
    return "\n".join(lines) + "\n"


DEFAULTS = RunDefaults(runs=5, redo=2, quiet_timeout=60.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = run_parser(__doc__.splitlines()[0] if __doc__ else None, DEFAULTS)
    parser.add_argument("--redis-server", default="redis-server", help="the redis-server binary")
    parser.add_argument("--embedded", action="store_true", help="the embedded store instead of Redis")
    return finish_run_args(parser, parser.parse_args(argv), DEFAULTS)


def report(path: Path) -> int:
    meta, records = load_results(path)
    table = markdown(summarize(records, meta.get("max_noise_pct", 20.0)), meta)
    path.with_suffix(".md").write_text(table)
    print(table)
    return 0


def check_targets(base: str) -> None:
    """off: 200; auth: 401 without the token or with another, 200 with it (the one invocation)."""
    expected = (
        (OFF.path, {}, 200),
        (AUTH.path, {}, 401),
        (AUTH.path, {"Authorization": "Bearer other"}, 401),
        (AUTH.path, {"Authorization": "Bearer bench"}, 200),
        (AUTH.path, {"Authorization": "Bearer bench"}, 200),
    )
    for path, headers, status in expected:
        got, body = get(base + path, headers)
        if got != status or (status == 200 and b'"ok":true' not in body):
            raise RuntimeError(f"{path} {headers} answered {got} {body[:300]!r}, expected {status}")
    print(f"check: {OFF.path} 200; {AUTH.path} 401 without or with another token, 200 with it", flush=True)


def describe(attempt: Attempt) -> str:
    cpu, raw = attempt.cpu, attempt.raw
    target = next(t.key for t in TARGETS if t.path in attempt.command)
    calls = per_request_calls(attempt)
    return (
        f"{target:<5} {attempt.rps:>9,.0f} req/s  {cpu_us_per_request(attempt):5.1f} us/req  "
        f"p50 {attempt.p50_ms:6.2f} ms  p99 {attempt.p99_ms:6.2f} ms  "
        f"cpu portway {cpu['server']:.0f}% redis {cpu.get('redis', 0.0):.1f}% backend {cpu['backend']:.0f}% "
        f"load {cpu['load']:.0f}% noise {cpu['noise']:.0f}%  get/req {calls.get('get', 0.0):.3f}  "
        f"non-2xx {raw.get('non_2xx', 0)} errors {raw.get('errors', 0)}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    handle_signals()
    redis_bin = None if args.embedded else shutil.which(args.redis_server)
    if redis_bin is None and not args.embedded:
        print(f"{args.redis_server} is not installed", file=sys.stderr)
        return 2
    tool_name = pick_tool(args)
    if tool_name is None:
        return 2
    tool = HeaderLoadTool(tool_name, args.connections, headers=(TOKEN_HEADER,))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    children = Children(args.out / f"logs-auth-{stamp}")
    py = sys.executable
    ports = {name: free_port() for name in ("redis", "backend", "portway")}
    layout = f"B: Portway on core {SERVER_CORE}; backend, store and load tool on core {LOAD_CORE}"
    meta = run_meta(args, tool, argv, layout)
    meta["store"] = "embedded" if args.embedded else "redis"
    meta["target_cost"] = TARGET_COST
    records: list[RunRecord] = []
    with stopping(children, meta):
        portway = [
            py,
            str(SERVERS / "portway_server.py"),
            "--port",
            str(ports["portway"]),
            "--backend",
            f"http://{HOST}:{ports['backend']}",
            "--auth-bench",
            *args.portway_arg,
        ]
        specs: dict[str, tuple[list[str], int]] = {
            "backend": ([py, str(SERVERS / "backend.py"), "--port", str(ports["backend"])], LOAD_CORE),
            "portway": (portway, SERVER_CORE),
        }
        names = ["backend", "portway"]
        if redis_bin is not None:
            redis_argv = [
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
            specs["redis"] = (redis_argv, LOAD_CORE)
            portway += ["--redis-url", f"redis://{HOST}:{ports['redis']}/0"]
            names.insert(0, "redis")
        started: dict[str, Child] = {}
        for name in names:
            argv_, core = specs[name]
            started[name] = children.start(name, argv_, core)
            meta["servers"][name] = f"taskset -c {core} " + " ".join(repr(a) if a == "" else a for a in argv_)
            if name == "redis":
                wait_redis(started[name], ports["redis"])
                info = redis_command(ports["redis"], "INFO", "server").decode()
                meta["machine"]["versions"]["redis"] = next(
                    (ln.split(":", 1)[1] for ln in info.splitlines() if ln.startswith("redis_version:")), "?"
                )
            else:
                wait_ready(started[name], f"http://{HOST}:{ports[name]}/")
            print(f"started {name} (pid {started[name].pid}, core {core}, port {ports[name]})", flush=True)
        base = f"http://{HOST}:{ports['portway']}"
        check_targets(base)
        trees = {"server": started["portway"].pid, "backend": started["backend"].pid}
        if "redis" in started:
            trees["redis"] = started["redis"].pid

        def probe() -> Any:
            if "redis" not in started:
                return dict
            before = commandstats(ports["redis"])
            return lambda: {"store": store_work(before, commandstats(ports["redis"]))}

        for run in range(1, args.runs + 1):
            order = TARGETS if run % 2 else TARGETS[::-1]  # alternate who goes first
            for target in order:
                record = measure(
                    tool, base + target.path, trees, args, RunRecord(target.key, run), describe, probe
                )
                records.append(record)
                check_alive(started)
    if meta.get("interrupted") and not records:
        return 130
    summary = summarize(records, args.max_noise)
    summary["verdict"] = verdict(summary, args.max_noise)
    save_results(args.out, f"auth-{stamp}", meta, summary, records, markdown(summary, meta))
    return 130 if meta.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())

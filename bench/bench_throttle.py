"""Issue #5's throttling benchmark: the HTTP_PROXY route with an API key, a usage plan (plan
throttle + quota) and a stage method throttle on Redis, against the same route with throttling off,
in one run.

    .venv/bin/python bench/bench_throttle.py             # 5 runs x 10 s per target (~3 min when quiet)
    .venv/bin/python bench/bench_throttle.py --quick     # smoke run: 1 run x 3 s
    .venv/bin/python bench/bench_throttle.py --report bench/out/throttle-<UTC>.json

One invocation starts, on 127.0.0.1 and on free ports, pinned like layout B of
``/work/shared/reference/ceilings.md`` (as its section 4, proxy + Redis):

* a private ``redis-server`` (``--save "" --appendonly no``, nothing on disk), core 1;
* ``servers/backend.py`` (the upstream), core 1;
* one Portway process, ``servers/portway_server.py --redis-url redis://... --throttle-bench``,
  alone on core 0 (see that module for the definition and the store work of a keyed request);
* the load, ``taskset -c 1 wrk -t1 -c64 -dDs --latency -H "x-api-key: <key>" URL``, core 1.

Targets, both on the same Portway process and sent the same request bytes (the key header too):

* ``off``:   ``/dev/proxy/hello``, throttling off (no key required, no stage or account bucket:
  no store call);
* ``keyed``: ``/dev/keyed/hello``, key checked, then one pipelined ``EVALSHA`` per request that
  passes the plan bucket, the stage method bucket, the quota and the usage counter.

It checks ``off`` answers 200, ``keyed`` 403 without or with a wrong key and 200 with it, then for each run
measures both targets, alternating which goes first, with bench_http's machinery: wait for a quiet
machine, warm up, measure, record per-process CPU (Portway, backend, Redis, the load tool, and
"noise": every other process) and redo a noisy attempt (keeping the least noisy). Around every
measured window it reads Redis's ``INFO commandstats``, so the store calls per request are
measured, not assumed. Ratios (keyed / off) are taken per run; the verdict (>= 0.85) uses the runs
where neither side had more than ``--max-noise`` % of a core of noise, and requires zero socket
errors and zero non-2xx responses on both targets. Results: ``bench/out/throttle-<UTC>.json`` and
``.md``.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import time
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
    tail,
    target_summary,
    wait_ready,
)

API_KEY = "PortwayBench0123456789abcdefKey"
TARGET_RATIO = 0.85
KEY_HEADER = f"x-api-key: {API_KEY}"


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    path: str


OFF = Target("off", "HTTP_PROXY, throttling off", "/dev/proxy/hello")
KEYED = Target("keyed", "HTTP_PROXY, API key + usage plan + method throttle on Redis", "/dev/keyed/hello")
TARGETS = (OFF, KEYED)


@dataclass
class HeaderLoadTool(LoadTool):
    """bench_http's load tool with extra request headers (``-H`` for wrk and loadgen.py alike)."""

    headers: tuple[str, ...] = ()

    def command(self, url: str, duration_s: int, warmup_s: int = 0) -> list[str]:
        cmd = super().command(url, duration_s, warmup_s)
        at = cmd.index(url)
        extra = [arg for header in self.headers for arg in ("-H", header)]
        return [*cmd[:at], *extra, *cmd[at:]]


# -- Redis ---------------------------------------------------------------------------------------------


def redis_command(port: int, *parts: str, timeout: float = 2.0) -> bytes:
    """Send one command, return the payload of its reply (simple, error or bulk string)."""
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p.encode()) for p in parts)
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            data += chunk
        head, _, rest = data.partition(b"\r\n")
        if head[:1] in (b"+", b"-", b":"):
            return head
        if head[:1] != b"$":
            raise ValueError(f"unexpected reply {head!r}")
        size = int(head[1:])
        while len(rest) < size + 2:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            rest += chunk
        return rest[:size]


def wait_redis(child: Child, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise RuntimeError(f"redis exited with {child.popen.returncode}:\n{tail(child.log_path)}")
        try:
            if redis_command(port, "PING", timeout=1.0) == b"+PONG":
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis did not answer on port {port}:\n{tail(child.log_path)}")


def commandstats(port: int) -> dict[str, tuple[int, int]]:
    """command -> (calls, usec) since Redis started (Lua's redis.call()s are counted too)."""
    out: dict[str, tuple[int, int]] = {}
    for line in redis_command(port, "INFO", "commandstats").decode().splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name, _, fields = line[len("cmdstat_") :].partition(":")
        values = dict(item.split("=", 1) for item in fields.split(","))
        out[name] = (int(values["calls"]), int(values["usec"]))
    return out


def store_work(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Calls per command and Redis's own command time (usec) over a window."""
    calls = {
        name: after[name][0] - before.get(name, (0, 0))[0]
        for name in after
        if after[name][0] != before.get(name, (0, 0))[0]
    }
    usec = sum(after[name][1] - before.get(name, (0, 0))[1] for name in after)
    return {"calls": calls, "usec": usec}


# -- summary -------------------------------------------------------------------------------------------


def redis_us_per_request(attempt: Attempt) -> float:
    return round(attempt.cpu.get("redis", 0.0) / 100 * 1e6 / attempt.rps, 1) if attempt.rps else 0.0


def per_request_calls(attempt: Attempt) -> dict[str, float]:
    """Redis commands per request in the window (Lua's inner calls included); the gateway's
    background work (key registry poll, node heartbeat) and our own INFO round to 0 and are left out."""
    requests = attempt.raw.get("requests") or 0
    calls = attempt.raw.get("store", {}).get("calls", {})
    rates = {name: round(n / requests, 3) for name, n in sorted(calls.items())} if requests else {}
    return {name: rate for name, rate in rates.items() if rate > 0}


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
            "redis_cpu_pct": median([a.cpu.get("redis", 0.0) for a in kept]),
            "redis_us_per_req": median([redis_us_per_request(a) for a in kept]),
            "noise_pct_median": median([a.cpu.get("noise", 0.0) for a in kept]),
            "requests": sum(int(a.raw.get("requests", 0)) for a in kept),
            "store_calls_per_request": per_request_calls(kept[-1]),
            # every measured attempt, the redone noisy ones too
            "non_2xx_all_attempts": sum(
                int(a.raw.get("non_2xx", 0)) + int(a.raw.get("errors", 0))
                for r in records
                if r.target == target.key
                for a in r.attempts
            ),
            "portway_plus_redis_us_per_req": median(
                [cpu_us_per_request(a) + redis_us_per_request(a) for a in kept]
            ),
        }
    if "off" not in summary or "keyed" not in summary:
        return summary
    pairs: list[tuple[int, Attempt, Attempt]] = []
    for r in records:
        if r.target != "keyed":
            continue
        base = next((x for x in records if x.target == "off" and x.run == r.run), None)
        if base is not None and base.kept.rps and r.kept.rps:
            pairs.append((r.run, r.kept, base.kept))

    def cost(keyed: Attempt, off: Attempt) -> float:
        ours = cpu_us_per_request(keyed)
        return round(cpu_us_per_request(off) / ours, 3) if ours else 0.0

    quiet = [p for p in pairs if max(p[1].cpu.get("noise", 0.0), p[2].cpu.get("noise", 0.0)) <= max_noise]
    summary["ratio"] = {
        "runs": [run for run, _, _ in pairs],
        "rps_per_run": [round(k.rps / o.rps, 3) for _, k, o in pairs],
        "cpu_cost_per_run": [cost(k, o) for _, k, o in pairs],
        "noise_per_run": [max(k.cpu.get("noise", 0.0), o.cpu.get("noise", 0.0)) for _, k, o in pairs],
        "rps": median([k.rps / o.rps for _, k, o in pairs]),
        "cpu_cost": median([cost(k, o) for _, k, o in pairs]),
        "p99": median([k.p99_ms / o.p99_ms for _, k, o in pairs if o.p99_ms]),
        "quiet_runs": len(quiet),
        "rps_quiet": median([k.rps / o.rps for _, k, o in quiet]),
        "cpu_cost_quiet": median([cost(k, o) for _, k, o in quiet]),
        "rps_of_medians": round(summary["keyed"]["rps"] / summary["off"]["rps"], 3),
    }
    return summary


def verdict(summary: dict[str, Any], max_noise: float) -> str:
    ratio = summary.get("ratio")
    if not ratio:
        return "incomplete"
    clean = all(summary[t.key]["non_2xx_all_attempts"] == 0 for t in TARGETS)
    if not clean:
        return "INVALID (errors or non-2xx responses)"
    if ratio["quiet_runs"] == 0:
        return f"inconclusive: no run with both sides under {max_noise:.0f} % noise"
    rps, cost = ratio["rps_quiet"], ratio["cpu_cost_quiet"]
    if rps >= TARGET_RATIO and cost >= TARGET_RATIO:
        return "met"
    if rps >= TARGET_RATIO or cost >= TARGET_RATIO:
        return "borderline (req/s and CPU per request disagree)"
    return "NOT met"


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        run_line(
            meta, f"Portway alone on core {SERVER_CORE}; backend, Redis and the load tool on core {LOAD_CORE}"
        ),
        "",
        "| target | req/s (median) | min - max | p50 ms | p99 ms | Portway CPU % | Portway CPU us/req "
        "| Redis CPU % | Redis CPU us/req | backend CPU % | load CPU % | noise % (median / max) "
        "| requests | errors / non-2xx | store calls per request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for target in TARGETS:
        s = summary.get(target.key)
        if s is None:
            continue
        calls = ", ".join(f"{name} {n:g}" for name, n in s["store_calls_per_request"].items()) or "none"
        lines.append(
            f"| {s['label']} (`{s['path']}`) | {s['rps']:,.0f} | {s['rps_min']:,.0f} - {s['rps_max']:,.0f} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['server_cpu_pct']:.0f} "
            f"| {s['server_us_per_req']:.1f} | {s['redis_cpu_pct']:.1f} | {s['redis_us_per_req']:.1f} "
            f"| {s['backend_cpu_pct']:.0f} | {s['load_cpu_pct']:.0f} "
            f"| {s['noise_pct_median']:.0f} / {s['noise_pct_max']:.0f} | {s['requests']:,} "
            f"| {s['errors']} / {s['non_2xx']} | {calls} |"
        )
    ratio = summary.get("ratio")
    if ratio:
        max_noise = meta.get("max_noise_pct", 20.0)
        both_off = summary["off"]["portway_plus_redis_us_per_req"]
        both_keyed = summary["keyed"]["portway_plus_redis_us_per_req"]
        lines += [
            "",
            f"Ratio keyed / off (median of per-run ratios): req/s **{ratio['rps']:.3f}x**, "
            f"CPU per request (off us / keyed us) {ratio['cpu_cost']:.3f}x, p99 {ratio['p99']:.2f}x; "
            f"over the {ratio['quiet_runs']} of {len(ratio['runs'])} runs with at most {max_noise:.0f} % "
            + (
                f"noise: req/s {ratio['rps_quiet']:.3f}x, CPU per request {ratio['cpu_cost_quiet']:.3f}x. "
                if ratio["quiet_runs"]
                else "noise: n/a. "
            )
            + f"Portway + Redis CPU per request: off {both_off:.1f} us, keyed {both_keyed:.1f} us. "
            f"Per run (req/s; CPU; noise %): "
            + "; ".join(
                f"{r}: {x:.3f}, {c:.3f}, {n:.0f}"
                for r, x, c, n in zip(
                    ratio["runs"],
                    ratio["rps_per_run"],
                    ratio["cpu_cost_per_run"],
                    ratio["noise_per_run"],
                    strict=True,
                )
            )
            + ".",
            "",
            f"Target (keyed >= {TARGET_RATIO}x off in req/s and in Portway CPU per request; no socket error "
            "and no non-2xx response in any attempt): "
            f"**{verdict(summary, max_noise)}**.",
        ]
    return "\n".join(lines) + "\n"


# -- the run -------------------------------------------------------------------------------------------


DEFAULTS = RunDefaults(runs=5, redo=2, quiet_timeout=60.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = run_parser(__doc__.splitlines()[0] if __doc__ else None, DEFAULTS)
    parser.add_argument("--redis-server", default="redis-server", help="the redis-server binary")
    return finish_run_args(parser, parser.parse_args(argv), DEFAULTS)


def report(path: Path) -> int:
    meta, records = load_results(path)
    table = markdown(summarize(records, meta.get("max_noise_pct", 20.0)), meta)
    path.with_suffix(".md").write_text(table)
    print(table)
    return 0


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def check_targets(base: str) -> None:
    """off: 200; keyed: 403 without the key, 200 with it (nothing measured yet)."""
    expected = (
        (OFF.path, {}, 200),
        (KEYED.path, {}, 403),
        (KEYED.path, {"x-api-key": "NotTheBenchKey0123456789"}, 403),
        (KEYED.path, {"x-api-key": API_KEY}, 200),
    )
    for path, headers, status in expected:
        got, body = get(base + path, headers)
        if got != status or (status == 200 and b'"ok":true' not in body):
            raise RuntimeError(f"{path} {headers} answered {got} {body[:300]!r}, expected {status}")
    print(
        f"check: {OFF.path} 200; {KEYED.path} 403 without or with a wrong key, 200 with the key", flush=True
    )


def describe(attempt: Attempt) -> str:
    cpu, raw = attempt.cpu, attempt.raw
    target = next(t.key for t in TARGETS if attempt.command.endswith(t.path))
    return (
        f"{target:<6} {attempt.rps:>9,.0f} req/s  {cpu_us_per_request(attempt):5.1f} us/req  "
        f"p50 {attempt.p50_ms:6.2f} ms  p99 {attempt.p99_ms:6.2f} ms  "
        f"cpu portway {cpu['server']:.0f}% redis {cpu['redis']:.1f}% backend {cpu['backend']:.0f}% "
        f"load {cpu['load']:.0f}% noise {cpu['noise']:.0f}% core0 {cpu.get('core0_busy', 0):.0f}% "
        f"core1 {cpu.get('core1_busy', 0):.0f}%  "
        f"evalsha/req {per_request_calls(attempt).get('evalsha', 0.0):.3f}  "
        f"non-2xx {raw.get('non_2xx', 0)} errors {raw.get('errors', 0)}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    handle_signals()
    redis_bin = shutil.which(args.redis_server)
    if redis_bin is None:
        print(f"{args.redis_server} is not installed", file=sys.stderr)
        return 2
    tool_name = pick_tool(args)
    if tool_name is None:
        return 2
    tool = HeaderLoadTool(tool_name, args.connections, headers=(KEY_HEADER,))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    children = Children(args.out / f"logs-throttle-{stamp}")
    py = sys.executable
    ports = {name: free_port() for name in ("redis", "backend", "portway")}
    backend_url = f"http://{HOST}:{ports['backend']}"
    redis_url = f"redis://{HOST}:{ports['redis']}/0"
    meta = run_meta(
        args,
        tool,
        argv,
        f"B: Portway on core {SERVER_CORE}; backend, redis and load tool on core {LOAD_CORE}",
    )
    meta["target_ratio"] = TARGET_RATIO
    records: list[RunRecord] = []
    with stopping(children, meta):
        specs: dict[str, tuple[list[str], int]] = {
            "redis": (
                [
                    redis_bin,
                    "--port",
                    str(ports["redis"]),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                LOAD_CORE,
            ),
            "backend": ([py, str(SERVERS / "backend.py"), "--port", str(ports["backend"])], LOAD_CORE),
            "portway": (
                [
                    py,
                    str(SERVERS / "portway_server.py"),
                    "--port",
                    str(ports["portway"]),
                    "--backend",
                    backend_url,
                    "--redis-url",
                    redis_url,
                    "--throttle-bench",
                    "--api-key",
                    API_KEY,
                    *args.portway_arg,
                ],
                SERVER_CORE,
            ),
        }
        started: dict[str, Child] = {}
        for name in ("redis", "backend", "portway"):
            argv_, core = specs[name]
            started[name] = children.start(name, argv_, core)
            meta["servers"][name] = f"taskset -c {core} " + " ".join(repr(a) if a == "" else a for a in argv_)
            if name == "redis":
                wait_redis(started[name], ports["redis"])
                version = redis_command(ports["redis"], "INFO", "server").decode()
                meta["machine"]["versions"]["redis"] = next(
                    (ln.split(":", 1)[1] for ln in version.splitlines() if ln.startswith("redis_version:")),
                    "?",
                )
            else:
                wait_ready(started[name], f"http://{HOST}:{ports[name]}/")
            print(f"started {name} (pid {started[name].pid}, core {core}, port {ports[name]})", flush=True)
        base = f"http://{HOST}:{ports['portway']}"
        check_targets(base)

        trees = {"server": started["portway"].pid, "backend": started["backend"].pid}
        trees["redis"] = started["redis"].pid

        def probe() -> Any:
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
    save_results(args.out, f"throttle-{stamp}", meta, summary, records, markdown(summary, meta))
    return 130 if meta.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())

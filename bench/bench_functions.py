"""Functions benchmark: the same serverless.yml and Python 3.11 handler under serverless-offline 13
and under Portway (default, process-isolated mode), each pinned to one core, in the same run.

    .venv/bin/python bench/bench_functions.py            # 3 runs x 10 s per server, wrk -c16
    .venv/bin/python bench/bench_functions.py --quick    # 1 run x 3 s: a smoke run
    .venv/bin/python bench/bench_functions.py --no-results-file   # do not rewrite RESULTS-functions.md

What it does, bounded in time and all on 127.0.0.1 (free ports):

1. Installs ``serverless@3`` and ``serverless-offline@13`` with npm into ``--sls-dir`` (default
   ``bench/out/serverless-offline``, git-ignored) unless already there, and copies the project
   (``bench/functions/serverless.yml`` + ``handler.py``) next to them.
2. Starts ``serverless offline start`` and ``portway serve bench/functions/serverless.yml``, each
   pinned with ``taskset -c 0`` (the handler processes each spawns inherit core 0), and times each
   server's first request (a cold start: serverless-offline spawns its Python process on first
   use; Portway pre-starts, or spawns on first use with ``provisionedConcurrency: 0``).
3. Loads each server once for ``--prime`` seconds (serverless-offline grows a pool of Python
   processes, one per concurrent request, each a cold start). Both log as they do by default
   (serverless-offline's request lines, Portway's access lines) into their log files.
4. Per run, the servers alternate (the order flips every run): wait for a quiet machine, warm up,
   ``taskset -c 1 wrk -t1 -c16 -dNs --latency URL`` from core 1, and the CPU used by each
   server's process tree, split into the front process (node / Portway's event loop) and the
   handler processes (serverless-offline's Python child, Portway's workers).
5. Prints a table, writes ``bench/out/functions-<UTC>.json``/``.md``, and rewrites the generated
   part of ``bench/RESULTS-functions.md`` (anything after the ``KEEP`` marker line is kept).

Every child is killed at the end, also on Ctrl-C or an error (``bench_http.Children``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import (
    HOST,
    LOAD_CORE,
    OUT,
    ROOT,
    SERVER_CORE,
    Attempt,
    Child,
    Children,
    LoadTool,
    RunDefaults,
    RunRecord,
    _proc_stats,
    check_alive,
    cpu_us_per_request,
    descendants,
    fetch,
    finish_run_args,
    handle_signals,
    measure,
    median,
    pick_tool,
    run_line,
    run_meta,
    run_parser,
    save_results,
    stopping,
    tail,
)

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH / "functions"
RESULTS = BENCH / "RESULTS-functions.md"
KEEP = "<!-- KEEP: bench_functions.py rewrites everything above this line -->"
NPM_PACKAGES = ("serverless@3", "serverless-offline@13")
EXPECT = b'"ok": true'
PATH = "/hello"
NODE_ENV = {  # no telemetry, update checks or dashboard prompts from the Serverless CLI
    "SLS_TELEMETRY_DISABLED": "1",
    "SLS_NOTIFICATIONS_MODE": "off",
    "SLS_DEPRECATION_DISABLE": "*",
    "SLS_INTERACTIVE_SETUP_DISABLE": "1",
}


@dataclass(frozen=True)
class Server:
    key: str
    label: str


SERVERS = (Server("slsoffline", "serverless-offline 13"), Server("portway", "Portway (process isolation)"))


def install(sls_dir: Path) -> str:
    """npm-install serverless 3 + serverless-offline 13 into ``sls_dir`` (once); returns the
    installed serverless-offline version. The project files are copied in every time."""
    package = sls_dir / "node_modules" / "serverless-offline" / "package.json"
    if not package.exists() or not json.loads(package.read_text())["version"].startswith("13."):
        if shutil.which("npm") is None:
            raise RuntimeError("npm is not installed (serverless-offline needs Node.js)")
        sls_dir.mkdir(parents=True, exist_ok=True)
        cmd = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(sls_dir), *NPM_PACKAGES]
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, timeout=900, stdout=subprocess.DEVNULL)
    for name in ("serverless.yml", "handler.py"):
        shutil.copyfile(PROJECT / name, sls_dir / name)
    return str(json.loads(package.read_text())["version"])


def wait_first(child: Child, url: str, timeout: float = 90.0) -> float:
    """Poll until the server accepts a connection, then time one request (the first invocation
    of the function: its cold start as a client sees it). Returns milliseconds."""
    deadline = time.monotonic() + timeout
    while True:
        if child.popen.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.popen.returncode}:\n{tail(child.log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} did not answer {url}:\n{tail(child.log_path)}")
        try:
            # Anything but a refused connection means the listener is up.
            fetch(f"http://{url.split('/')[2]}/__portway_bench_probe", timeout=1.0)
            break
        except OSError:
            time.sleep(0.05)
    started = time.perf_counter()
    status, body = fetch(url, timeout=30)
    cold_ms = (time.perf_counter() - started) * 1000
    if status != 200 or EXPECT not in body:
        raise RuntimeError(f"{child.name}: {url} answered {status} {body[:300]!r}")
    return round(cold_ms, 1)


def front_probe(root: int) -> Callable[[], Callable[[], dict[str, Any]]]:
    """CPU ticks of the front process alone (``root``), and the handler processes under it."""

    def start() -> Callable[[], dict[str, Any]]:
        t0, s0 = time.monotonic(), _proc_stats()

        def finish() -> dict[str, Any]:
            s1 = _proc_stats()
            elapsed = time.monotonic() - t0
            tick = os.sysconf("SC_CLK_TCK")
            front = (s1.get(root, (0, 0))[1] - s0.get(root, (0, 0))[1]) / tick
            kids = (descendants(root, s1) | descendants(root, s0)) - {root}
            handler = sum(s1.get(p, s0.get(p, (0, 0)))[1] - s0.get(p, (0, 0))[1] for p in kids) / tick
            return {
                "front_cpu_pct": round(100 * front / elapsed, 1),
                "handler_cpu_pct": round(100 * handler / elapsed, 1),
                "handler_processes": len(kids),
            }

        return finish

    return start


# Stages of a request in Portway's gateway process, by the first matching frame of a sampled stack
# (innermost first: a stack inside the invoker counts as "invoke" even though the pipeline called it).
STAGES = (
    (
        "invoke: pipe write to the worker",
        ("WorkerProcess.send_raw",),
    ),
    ("invoke: queue, batch, reply read and decode", ("WorkerPoolInvoker.", "WorkerProcess.", "_Slots.")),
    ("Lambda event build", ("http_v2_event", "rest_v1_event")),
    ("proxy response check", ("v2_response", "v1_response", "_framed_by_gateway")),
    ("throttle (account bucket)", ("ThrottleStage.",)),
    ("route", ("RouteStage.",)),
    ("access log", ("AccessLog.",)),
    ("pipeline runner", ("Gateway.handle", "IntegrateStage.", "LambdaProxyIntegration.", "ReadBodyStage.")),
    (
        "HTTP server (aiohttp: parse, request, response write)",
        ("aiohttp/", "handle_request", "server/app.py"),
    ),
)


def stage_budget(raw: Path, front_us: float, handler_us: float) -> list[tuple[str, float, float]]:
    """(stage, share of samples, us/request) from a py-spy raw profile of the gateway process.

    py-spy counts a thread that is runnable but descheduled as busy: the gateway is, inside its
    pipe write, while the worker it woke runs its batch. So samples are spread over the gateway's
    CPU *plus* about the worker's, and the write's own cost is its share minus the worker's CPU."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        total += int(n)
        stage = "event loop, other"
        for frame in reversed(frames):
            hit = next((name for name, keys in STAGES if any(k in frame for k in keys)), None)
            if hit is not None:
                stage = hit
                break
        counts[stage] = counts.get(stage, 0) + int(n)
    busy = front_us + handler_us
    rows = []
    for stage, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        us = busy * n / total
        if stage == STAGES[0][0]:
            us = max(0.0, us - handler_us)
        rows.append((stage, round(n / total, 3), round(us, 1)))
    return rows


def profile_portway(
    tool: LoadTool, url: str, root: int, seconds: int, out: Path
) -> tuple[list[tuple[str, float, float]], dict[str, Any]] | None:
    """Load Portway while py-spy samples its gateway process (on the load core); the stage budget."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("--profile: py-spy not found (pip install py-spy); no stage budget", file=sys.stderr)
        return None
    raw = out / "functions-profile.collapsed"
    cmd = [
        "taskset",
        "-c",
        str(LOAD_CORE),
        py_spy,
        "record",
        "--nonblocking",
        "--function",
        "--format",
        "raw",
    ]
    cmd += ["-r", "200", "-d", str(seconds + 1), "-p", str(root), "-o", str(raw)]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    finish = front_probe(root)()
    result, _ = tool.run(url, seconds)
    cpu = finish()
    spy.wait(timeout=seconds + 30)
    if not raw.exists():
        print("--profile: py-spy wrote nothing", file=sys.stderr)
        return None
    front_us = cpu["front_cpu_pct"] / 100 * 1e6 / result["rps"]
    cpu.update(rps=result["rps"], front_us_per_req=round(front_us, 1))
    cpu["handler_us_per_req"] = round(cpu["handler_cpu_pct"] / 100 * 1e6 / result["rps"], 1)
    return stage_budget(raw, front_us, cpu["handler_us_per_req"]), cpu


def us_per_req(attempt: Attempt, key: str) -> float:
    return round(attempt.raw.get(key, 0.0) / 100 * 1e6 / attempt.rps, 1) if attempt.rps else 0.0


def summarize(records: list[RunRecord]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for server in SERVERS:
        kept = [r.kept for r in records if r.target == server.key]
        if not kept:
            continue
        out[server.key] = {
            "label": server.label,
            "runs": len(kept),
            "rps": median([a.rps for a in kept]),
            "rps_min": min(a.rps for a in kept),
            "rps_max": max(a.rps for a in kept),
            "p50_ms": median([a.p50_ms for a in kept]),
            "p99_ms": median([a.p99_ms for a in kept]),
            "server_cpu_pct": median([a.cpu.get("server", 0.0) for a in kept]),
            "server_us_per_req": median([cpu_us_per_request(a) for a in kept]),
            "front_us_per_req": median([us_per_req(a, "front_cpu_pct") for a in kept]),
            "handler_us_per_req": median([us_per_req(a, "handler_cpu_pct") for a in kept]),
            "handler_processes": max(int(a.raw.get("handler_processes", 0)) for a in kept),
            "load_cpu_pct": median([a.cpu.get("load", 0.0) for a in kept]),
            "noise_pct_max": max(a.cpu.get("noise", 0.0) for a in kept),
            "errors": sum(int(a.raw.get("errors", 0)) for a in kept),
            "non_2xx": sum(int(a.raw.get("non_2xx", 0)) for a in kept),
            "command": kept[0].command,
        }
    pairs = []
    for r in records:
        if r.target != "portway":
            continue
        base = next((x for x in records if x.target == "slsoffline" and x.run == r.run), None)
        if base is not None and base.kept.rps:
            ours, theirs = r.kept, base.kept
            cost = cpu_us_per_request(theirs) / cpu_us_per_request(ours) if cpu_us_per_request(ours) else 0.0
            pairs.append((round(ours.rps / theirs.rps, 2), round(cost, 2)))
    if pairs:
        out["ratio"] = {
            "rps": median([p[0] for p in pairs]),
            "cpu_cost": median([p[1] for p in pairs]),
            "rps_per_run": [p[0] for p in pairs],
            "cpu_cost_per_run": [p[1] for p in pairs],
        }
    return out


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        run_line(meta, f"each server on core {SERVER_CORE}, wrk on core {LOAD_CORE}"),
        "",
        "| server | req/s (median) | min - max | p50 ms | p99 ms | first request (cold) ms | server CPU % "
        "| CPU us/req | front us/req | handler us/req | handler processes | max noise % | errors / non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server in SERVERS:
        s = summary.get(server.key)
        if s is None:
            continue
        lines.append(
            f"| {s['label']} | {s['rps']:,.0f} | {s['rps_min']:,.0f} - {s['rps_max']:,.0f} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {meta['cold_ms'].get(server.key, 0):,.0f} "
            f"| {s['server_cpu_pct']:.0f} "
            f"| {s['server_us_per_req']:.0f} | {s['front_us_per_req']:.0f} | {s['handler_us_per_req']:.0f} "
            f"| {s['handler_processes']} | {s['noise_pct_max']:.0f} | {s['errors']} / {s['non_2xx']} |"
        )
    ratio = summary.get("ratio")
    if ratio:
        lines += [
            "",
            f"**Portway / serverless-offline: {ratio['rps']:.2f}x req/s** (per run: "
            f"{', '.join(f'{x:.2f}' for x in ratio['rps_per_run'])}); CPU per request "
            f"{ratio['cpu_cost']:.2f}x less (per run: "
            f"{', '.join(f'{x:.2f}' for x in ratio['cpu_cost_per_run'])}). "
            "Ratios are medians of per-run ratios; the servers alternate within each run.",
        ]
    lines += [
        "",
        '"front" is the process wrk talks to (node for serverless-offline, the gateway\'s event loop '
        'for Portway); "handler" is the Python processes under it (serverless-offline\'s child, '
        "Portway's workers). CPU % is of one core; noise is CPU used by other tenants' processes.",
    ]
    return "\n".join(lines) + "\n"


def budget_markdown(budget: list[tuple[str, float, float]], cpu: dict[str, Any]) -> str:
    lines = [
        "",
        f"Portway's CPU per request by stage (py-spy on the gateway process during a separate "
        f"{cpu.get('seconds', 0)} s load at {cpu['rps']:,.0f} req/s; the profiler costs the gateway a "
        "little. py-spy counts the gateway as busy while it is descheduled inside its pipe write and "
        "the worker it woke runs: shares are of gateway + worker time, and the pipe-write row has "
        "the worker's CPU taken out):",
        "",
        "| stage | share of gateway samples | us/request |",
        "|---|---:|---:|",
        *[f"| {stage} | {share:.1%} | {us:.1f} |" for stage, share, us in budget],
        f"| **gateway process, total** | | **{cpu['front_us_per_req']:.1f}** |",
        f"| handler worker (decode, context, handler, encode) | | {cpu['handler_us_per_req']:.1f} |",
    ]
    return "\n".join(lines) + "\n"


def write_results(table: str, meta: dict[str, Any], json_path: Path) -> None:
    kept = ""
    if RESULTS.exists():
        text = RESULTS.read_text()
        if KEEP in text:
            kept = text[text.index(KEEP) :]
    header = [
        "# Benchmark results: Python functions, Portway vs serverless-offline",
        "",
        f"Generated by `{' '.join(meta['argv'])}` (bench/bench_functions.py; raw data "
        f"`{json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path}`, bench/out is not "
        "committed). serverless-offline "
        f"{meta['slsoffline_version']} (npm), Node {meta['node_version']}, one `hello` function "
        "(bench/functions/serverless.yml, `GET /hello`, HTTP API).",
        "",
        "Servers (each pinned to core 0 with its handler processes):",
        "",
        *[f"* `{cmd}`" for cmd in meta["servers"].values()],
        "",
    ]
    RESULTS.write_text("\n".join(header) + "\n" + table + "\n" + (kept or KEEP + "\n"))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = RunDefaults()
    parser = run_parser(__doc__.splitlines()[0] if __doc__ else None, defaults)
    parser.set_defaults(connections=16)
    parser.add_argument("--sls-dir", type=Path, default=OUT / "serverless-offline")
    parser.add_argument(
        "--prime", type=int, default=5, help="seconds of load on each server once before the runs (default 5)"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="S", help="then profile Portway for S s: CPU by stage"
    )
    parser.add_argument("--no-results-file", action="store_true", help="leave RESULTS-functions.md alone")
    return finish_run_args(parser, parser.parse_args(argv), defaults)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handle_signals()
    tool_name = pick_tool(args)
    if tool_name is None:
        return 2
    tool = LoadTool(tool_name, args.connections)
    version = install(args.sls_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    children = Children(args.out / f"logs-functions-{stamp}")
    meta = run_meta(args, tool, argv, f"each server on core {SERVER_CORE}; wrk on core {LOAD_CORE}")
    meta["slsoffline_version"] = version
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    meta["node_version"] = node.stdout.strip()
    meta["cold_ms"] = {}
    ports = {"slsoffline": 0, "portway": 0}
    records: list[RunRecord] = []
    with stopping(children, meta):
        from bench_http import free_port

        ports = {key: free_port() for key in ports}
        sls = [
            "node",
            str(args.sls_dir / "node_modules" / "serverless" / "bin" / "serverless.js"),
            "offline",
            "start",
            "--host",
            HOST,
            "--httpPort",
            str(ports["slsoffline"]),
            "--lambdaPort",
            str(free_port()),
        ]
        portway = [
            sys.executable,
            "-m",
            "server",
            "serve",
            str(PROJECT / "serverless.yml"),
            "--host",
            HOST,
            "--port",
            str(ports["portway"]),
            *args.portway_arg,
        ]
        started = {
            "slsoffline": children.start(
                "slsoffline", sls, SERVER_CORE, cwd=args.sls_dir, env={**os.environ, **NODE_ENV}
            ),
            "portway": children.start("portway", portway, SERVER_CORE),
        }
        for key, cmd in (("slsoffline", sls), ("portway", portway)):
            meta["servers"][key] = f"taskset -c {SERVER_CORE} " + " ".join(cmd)
        for key, child in started.items():
            meta["cold_ms"][key] = wait_first(child, f"http://{HOST}:{ports[key]}{PATH}")
            print(f"started {key} (pid {child.pid}): first request {meta['cold_ms'][key]} ms", flush=True)
        for key in started:  # serverless-offline grows a pool of Python processes under load: fill it
            tool.run(f"http://{HOST}:{ports[key]}{PATH}", args.prime)
        for run in range(1, args.runs + 1):
            order = SERVERS if run % 2 else tuple(reversed(SERVERS))
            for server in order:

                def describe(attempt: Attempt, key: str = server.key) -> str:
                    return (
                        f"{key:<11} {attempt.rps:>8,.0f} req/s  {cpu_us_per_request(attempt):5.0f} us/req "
                        f"(front {us_per_req(attempt, 'front_cpu_pct'):.0f}, handler "
                        f"{us_per_req(attempt, 'handler_cpu_pct'):.0f})  p50 {attempt.p50_ms:.2f} ms  "
                        f"noise {attempt.cpu['noise']:.0f}%"
                    )

                root = started[server.key].pid
                url = f"http://{HOST}:{ports[server.key]}{PATH}"
                record = RunRecord(server.key, run)
                trees = {"server": root}
                records.append(measure(tool, url, trees, args, record, describe, front_probe(root)))
                check_alive(started)
        if args.profile and not meta.get("interrupted"):
            url = f"http://{HOST}:{ports['portway']}{PATH}"
            profiled = profile_portway(tool, url, started["portway"].pid, args.profile, args.out)
            if profiled is not None:
                meta["stage_budget"], meta["profile_cpu"] = profiled
                meta["profile_cpu"]["seconds"] = args.profile
    if meta.get("interrupted") and not records:
        return 130
    summary = summarize(records)
    table = markdown(summary, meta)
    if meta.get("stage_budget"):
        table += budget_markdown(meta["stage_budget"], meta["profile_cpu"])
    json_path, _ = save_results(args.out, f"functions-{stamp}", meta, summary, records, table)
    if not args.no_results_file and not meta.get("interrupted"):
        write_results(table, meta, json_path)
    return 130 if meta.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())

"""Portway's first benchmark: a Python-handler route and an HTTP_PROXY route, each beside a minimal
aiohttp baseline measured in the same run.

    .venv/bin/python bench/bench_http.py            # default: 3 runs x 10 s per target (~4 min when quiet)
    .venv/bin/python bench/bench_http.py --quick    # smoke run: 1 run x 3 s, no redo (~35 s)
    .venv/bin/python bench/bench_http.py --runs 5 --duration 10 --connections 64 --group proxy

One invocation starts, on 127.0.0.1 and on free ports:

* ``servers/backend.py`` (the upstream, small JSON),
* ``servers/minimal_server.py`` (baseline for (a): a handler that returns a small JSON),
* ``servers/minimal_proxy.py`` (baseline for (b): one pooled ``ClientSession``),
* ``servers/portway_server.py`` (Portway: ``GET /dev/py`` in-process handler, ``GET /dev/pyproc``
  process-isolated handler, ``ANY /dev/proxy/{proxy+}`` HTTP_PROXY to the backend),

pinned like layout B of ``/work/shared/reference/ceilings.md``: every server under test on core 0
(only one of them is loaded at a time; Portway's handler worker processes inherit core 0), the
backend and the load generator on core 1. It checks every target answers 200 with the expected
body, then for each run and each target: waits until the machine is quiet, runs a warm-up, runs the
measured load (``taskset -c 1 wrk -t1 -cC -dDs --latency URL``; ``bench/loadgen.py`` when wrk is
missing), records per-process CPU and the CPU other tenants used ("noise") and redoes a noisy run
(bounded). Medians over runs are printed as a markdown table and written with every raw run to
``bench/out/results-<UTC timestamp>.json`` / ``.md``. Every child process is killed at the end, also
on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
SERVERS = BENCH / "servers"
HOST = "127.0.0.1"
SERVER_CORE = 0  # the server under test, alone
LOAD_CORE = 1  # backend + load generator
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- processes ---------------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: TextIO
    core: int

    @property
    def pid(self) -> int:
        return self.popen.pid


class Children:
    """Every process this script starts, each in its own session so its whole group can be killed."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.items: list[Child] = []

    def start(
        self, name: str, argv: list[str], core: int, cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> Child:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self._log_dir / f"{name}.log"
        log = log_path.open("w")
        cmd = ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        popen = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child = Child(name, popen, log_path, log, core)
        self.items.append(child)
        return child

    def stop_all(self) -> None:
        for child in self.items:
            if child.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 8
        for child in self.items:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.items:
            # Anything left in the group (the leader, or worker processes it spawned).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=2)
            child.log.close()
        self.items.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def fetch(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_ready(child: Child, url: str, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers (any status); fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.popen.returncode}:\n{tail(child.log_path)}")
        try:
            fetch(url, timeout=1.0)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:.0f} s:\n{tail(child.log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- CPU accounting ------------------------------------------------------------------------------------


def _proc_stats() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime + stime ticks) for every process (kernel threads have ppid 2 / pid 2)."""
    out: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        # fields[0] is state (field 3); ppid is field 4, utime 14, stime 15.
        out[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return out


def _machine_busy_ticks() -> dict[str, tuple[int, int]]:
    """ "cpu" (all) and "cpuN" -> (busy, steal) ticks from /proc/stat (busy includes irq/softirq)."""
    out: dict[str, tuple[int, int]] = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *rest = line.split()
            user, nice, system, _idle, _iowait, irq, softirq, steal = ([int(x) for x in rest] + [0] * 8)[:8]
            out[name] = (user + nice + system + irq + softirq, steal)
    return out


def descendants(root: int, stats: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found = {root}
    stack = [root]
    while stack:
        for kid in children.get(stack.pop(), []):
            if kid not in found:
                found.add(kid)
                stack.append(kid)
    return found


class CpuWindow:
    """CPU used between ``start()`` and ``stop()``: per named process tree, the load tool, the rest."""

    def __init__(self, trees: dict[str, int]) -> None:
        self._trees = trees

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._p0 = _proc_stats()
        self._m0 = _machine_busy_ticks()
        self._c0 = resource.getrusage(resource.RUSAGE_CHILDREN)

    def stop(self) -> dict[str, float]:
        """Percent of one core, per tree; ``load`` = waited-for children (the load tool); ``noise``."""
        elapsed = max(1e-6, time.monotonic() - self._t0)
        p1 = _proc_stats()
        m1 = _machine_busy_ticks()
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours: set[int] = {os.getpid()}
        result: dict[str, float] = {}
        for name, root in self._trees.items():
            pids = descendants(root, p1) | descendants(root, self._p0)
            ours |= pids
            ticks = 0
            for pid in pids:
                before = self._p0.get(pid, (0, 0))[1]  # born inside the window: counts from zero
                after = p1[pid][1] if pid in p1 else before  # exited inside the window: unknown, 0
                ticks += after - before
            result[name] = round(100 * ticks / CLK_TCK / elapsed, 1)
        load_s = (c1.ru_utime + c1.ru_stime) - (self._c0.ru_utime + self._c0.ru_stime)
        result["load"] = round(100 * load_s / elapsed, 1)
        other = 0
        for pid, (ppid, ticks) in p1.items():
            if pid in ours or pid == 2 or ppid == 2 or pid == 1:
                continue  # ours, or kernel threads (loopback softirq work lands in ksoftirqd)
            other += ticks - self._p0.get(pid, (0, 0))[1]
        result["noise"] = round(100 * other / CLK_TCK / elapsed, 1)
        for cpu, (busy, steal) in m1.items():
            busy0, steal0 = self._m0.get(cpu, (busy, steal))
            label = "all" if cpu == "cpu" else f"core{cpu[3:]}"
            result[f"{label}_busy"] = round(100 * (busy - busy0) / CLK_TCK / elapsed, 1)
            result[f"{label}_steal"] = round(100 * (steal - steal0) / CLK_TCK / elapsed, 1)
        return result


def wait_for_quiet(threshold_pct: float, timeout_s: float) -> float:
    """Wait until the whole machine uses less than ``threshold_pct`` of one core (0.5 s samples).

    Our servers are idle between runs, so this measures other tenants. Returns the seconds waited
    (``timeout_s`` when it never got quiet; the run then goes ahead and its noise is recorded).
    """
    start = time.monotonic()
    while True:
        b0 = _machine_busy_ticks()["cpu"][0]
        time.sleep(0.5)
        b1 = _machine_busy_ticks()["cpu"][0]
        busy_pct = 100 * (b1 - b0) / CLK_TCK / 0.5
        waited = time.monotonic() - start
        if busy_pct < threshold_pct or waited >= timeout_s:
            return round(waited, 1)


# -- load tools ----------------------------------------------------------------------------------------


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text: str) -> dict[str, Any]:
    """Req/s, latency percentiles (ms), request count, socket errors and non-2xx/3xx from wrk's output."""
    out: dict[str, Any] = {}
    match = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if not match:
        raise ValueError(f"no Requests/sec in wrk output:\n{text}")
    out["rps"] = float(match.group(1))
    for pct, value, unit in re.findall(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        out[f"p{pct}_ms"] = round(float(value) * _UNITS[unit], 3)
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if match:
        out["requests"] = int(match.group(1))
    lat = re.search(r"^\s*Latency\s+[\d.]+(?:us|ms|s)\s+[\d.]+(?:us|ms|s)\s+([\d.]+)(us|ms|s)", text, re.M)
    if lat:
        out["max_ms"] = round(float(lat.group(1)) * _UNITS[lat.group(2)], 3)
    errors = 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if match:
        errors = sum(int(x) for x in match.groups())
    out["errors"] = errors
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(match.group(1)) if match else 0
    return out


@dataclass
class LoadTool:
    name: str  # "wrk" or "loadgen.py"
    connections: int

    def command(self, url: str, duration_s: int, warmup_s: int = 0) -> list[str]:
        pin = ["taskset", "-c", str(LOAD_CORE)] if shutil.which("taskset") else []
        if self.name == "wrk":
            return [*pin, "wrk", "-t1", f"-c{self.connections}", f"-d{duration_s}s", "--latency", url]
        return [
            *pin,
            sys.executable,
            str(BENCH / "loadgen.py"),
            url,
            "-c",
            str(self.connections),
            "-d",
            str(duration_s),
            "--warmup",
            str(warmup_s),
            "--json",
        ]

    def run(self, url: str, duration_s: int) -> tuple[dict[str, Any], str]:
        cmd = self.command(url, duration_s)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        if self.name == "wrk":
            return parse_wrk(proc.stdout), " ".join(cmd)
        data = json.loads(proc.stdout)
        return {
            k: data[k]
            for k in (
                "rps",
                "p50_ms",
                "p75_ms",
                "p90_ms",
                "p99_ms",
                "max_ms",
                "requests",
                "errors",
                "non_2xx",
            )
        }, " ".join(cmd)


# -- targets -------------------------------------------------------------------------------------------


@dataclass
class Target:
    key: str
    label: str
    group: str  # "python" | "proxy"
    server: str  # name of the Child serving it
    path: str
    expect: bytes  # a fragment the 200 body must contain
    baseline: str | None = None  # key of the target it is compared with


TARGETS = [
    Target("minimal_server", "minimal aiohttp server", "python", "minimal_server", "/dev/py", b'"ok": true'),
    Target(
        "portway_py",
        "Portway Python handler, in-process",
        "python",
        "portway",
        "/dev/py",
        b'"ok": true',
        "minimal_server",
    ),
    Target(
        "portway_pyproc",
        "Portway Python handler, process isolation",
        "python",
        "portway",
        "/dev/pyproc",
        b'"ok": true',
        "minimal_server",
    ),
    Target("minimal_proxy", "minimal aiohttp proxy", "proxy", "minimal_proxy", "/hello", b'"ok":true'),
    Target(
        "portway_proxy",
        "Portway HTTP_PROXY",
        "proxy",
        "portway",
        "/dev/proxy/hello",
        b'"ok":true',
        "minimal_proxy",
    ),
]


@dataclass
class Attempt:
    rps: float
    p50_ms: float
    p99_ms: float
    raw: dict[str, Any]
    cpu: dict[str, float]
    quiet_wait_s: float
    command: str


@dataclass
class RunRecord:
    target: str
    run: int
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def kept(self) -> Attempt:
        """The attempt with the least noise (the last one when all were equally noisy)."""
        return min(reversed(self.attempts), key=lambda a: a.cpu.get("noise", 0.0))


Probe = Callable[[], Callable[[], dict[str, Any]]]
"""Called just before a measured load; what it returns is called just after, and its dict is
merged into the attempt's ``raw`` (e.g. counters read from a store around the window)."""


def measure(
    tool: LoadTool,
    url: str,
    trees: dict[str, int],
    args: argparse.Namespace,
    record: RunRecord,
    describe: Callable[[Attempt], str],
    probe: Probe | None = None,
) -> RunRecord:
    """One run of one target: wait for quiet, warm up, measure with the CPU of ``trees`` (name ->
    root pid; ``"server"`` is the one under test), redo while noisy (``args.redo`` times).

    Uses ``args.max_noise``, ``args.quiet_timeout``, ``args.warmup``, ``args.duration``,
    ``args.runs`` and ``args.redo``; prints one line per attempt, its middle from ``describe``.
    """
    for attempt_no in range(args.redo + 1):
        waited = wait_for_quiet(args.max_noise, args.quiet_timeout)
        if args.warmup:
            tool.run(url, args.warmup)
        window = CpuWindow(trees)
        window.start()
        finish = probe() if probe is not None else None
        raw, command = tool.run(url, args.duration)
        if finish is not None:
            raw.update(finish())
        cpu = window.stop()
        attempt = Attempt(
            rps=float(raw["rps"]),
            p50_ms=float(raw.get("p50_ms", 0.0)),
            p99_ms=float(raw.get("p99_ms", 0.0)),
            raw=raw,
            cpu=cpu,
            quiet_wait_s=waited,
            command=command,
        )
        record.attempts.append(attempt)
        noisy = cpu["noise"] > args.max_noise
        print(
            f"run {record.run}/{args.runs} {describe(attempt)} quiet-wait {waited:.0f}s"
            + ("  (noisy, redo)" if noisy and attempt_no < args.redo else ""),
            flush=True,
        )
        if not noisy:
            break
    return record


def check_alive(children: dict[str, Child]) -> None:
    for child in children.values():
        if child.popen.poll() is not None:
            raise RuntimeError(f"{child.name} died during the run:\n{tail(child.log_path)}")


# -- the run -------------------------------------------------------------------------------------------


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = git("status", "--porcelain", "--", "server", "routes", "connections")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "gateway_tree_dirty": bool(dirty),
        "dirty_files": dirty.splitlines(),
    }


def machine_info(tool: LoadTool) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {"python": platform.python_version()}
    for mod in ("aiohttp", "uvloop", "orjson", "multidict", "yarl"):
        with contextlib.suppress(Exception):
            versions[mod] = __import__(mod).__version__
    wrk = shutil.which("wrk")
    if wrk:
        proc = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
        first = (proc.stdout or proc.stderr).splitlines()
        versions["wrk"] = first[0] if first else "?"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "load_tool": tool.name,
        "versions": versions,
    }


def run_meta(args: argparse.Namespace, tool: LoadTool, argv: list[str] | None, layout: str) -> dict[str, Any]:
    """What a results JSON records about its run (``servers`` is filled in as they start)."""
    return {
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "argv": [Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])],
        "load_tool": tool.name,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "runs": args.runs,
        "max_noise_pct": args.max_noise,
        "layout": layout,
        "git": git_info(),
        "machine": machine_info(tool),
        "servers": {},
    }


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def cpu_us_per_request(attempt: Attempt) -> float:
    return round(attempt.cpu.get("server", 0.0) / 100 * 1e6 / attempt.rps, 1) if attempt.rps else 0.0


def target_summary(kept: list[Attempt]) -> dict[str, Any]:
    """Medians (and min/max, sums) over the kept attempts of one target."""
    rps = [a.rps for a in kept]
    return {
        "runs": len(kept),
        "rps": median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "p50_ms": median([a.p50_ms for a in kept]),
        "p99_ms": median([a.p99_ms for a in kept]),
        "server_cpu_pct": median([a.cpu.get("server", 0.0) for a in kept]),
        # CPU the server process tree spent per request: less sensitive to other tenants than req/s.
        "server_us_per_req": median([cpu_us_per_request(a) for a in kept]),
        "backend_cpu_pct": median([a.cpu.get("backend", 0.0) for a in kept]),
        "load_cpu_pct": median([a.cpu.get("load", 0.0) for a in kept]),
        "noise_pct_max": max(a.cpu.get("noise", 0.0) for a in kept),
        "errors": sum(int(a.raw.get("errors", 0)) for a in kept),
        "non_2xx": sum(int(a.raw.get("non_2xx", 0)) for a in kept),
        "command": kept[0].command,
    }


def summarize(records: list[RunRecord], max_noise: float | None = None) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for target in TARGETS:
        kept = [r.kept for r in records if r.target == target.key]
        if not kept:
            continue
        summary[target.key] = {"label": target.label, **target_summary(kept)}
    for target in TARGETS:
        if target.baseline and target.key in summary and target.baseline in summary:
            s, b = summary[target.key], summary[target.baseline]
            # Ratios are taken per run (Portway and its baseline measured minutes apart, under the
            # same conditions) and the median of those is reported: a ratio of medians could pair
            # a quiet run of one with a noisy run of the other.
            pairs: list[tuple[Attempt, Attempt]] = []
            for r in records:
                if r.target != target.key:
                    continue
                base = next((x for x in records if x.target == target.baseline and x.run == r.run), None)
                if base is not None and base.kept.rps and r.kept.rps:
                    pairs.append((r.kept, base.kept))

            def paired(fn: Any, pairs: list[tuple[Attempt, Attempt]] = pairs) -> list[float]:
                return [round(fn(ours, theirs), 3) for ours, theirs in pairs]

            quiet_limit = max_noise if max_noise is not None else float("inf")
            quiet = [
                (o, t)
                for o, t in pairs
                if max(o.cpu.get("noise", 0.0), t.cpu.get("noise", 0.0)) <= quiet_limit
            ]
            rps = paired(lambda o, t: o.rps / t.rps)
            p50 = paired(lambda o, t: o.p50_ms / t.p50_ms if t.p50_ms else 0.0)
            p99 = paired(lambda o, t: o.p99_ms / t.p99_ms if t.p99_ms else 0.0)
            # baseline CPU per request / ours: the req/s ratio both would reach on a full, quiet core
            cost = paired(
                lambda o, t: cpu_us_per_request(t) / cpu_us_per_request(o) if cpu_us_per_request(o) else 0
            )
            s["ratio"] = {
                "baseline": target.baseline,
                "rps": median(rps),
                "p50": median(p50),
                "p99": median(p99),
                "cpu_cost": median(cost),
                "rps_per_run": rps,
                "cpu_cost_per_run": cost,
                "rps_of_medians": round(s["rps"] / b["rps"], 3) if b["rps"] else 0.0,
                "noise_pct_max": max([s["noise_pct_max"], b["noise_pct_max"]]),
                # the same over the runs where neither side exceeded --max-noise
                "quiet_runs": len(quiet),
                "rps_quiet": median(paired(lambda o, t: o.rps / t.rps, quiet)),
                "cpu_cost_quiet": median(
                    paired(
                        lambda o, t: (
                            cpu_us_per_request(t) / cpu_us_per_request(o) if cpu_us_per_request(o) else 0
                        ),
                        quiet,
                    )
                ),
            }
    return summary


def run_line(meta: dict[str, Any], layout: str) -> str:
    """The sentence above a results table: load, runs, layout, time, commit."""
    dirty = " + uncommitted gateway changes" if meta["git"]["gateway_tree_dirty"] else ""
    partial = f"**Interrupted ({meta['interrupted']}): partial results.** " if meta.get("interrupted") else ""
    return (
        partial + f"Load: `{meta['load_tool']}`, {meta['connections']} connections, {meta['duration_s']} s x "
        f"{meta['runs']} runs (median), {meta['warmup_s']} s warm-up; layout B ({layout}). "
        f"{meta['started_utc']} UTC, commit {meta['git']['commit']}{dirty}."
    )


def markdown(summary: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        run_line(meta, f"server under test on core {SERVER_CORE}; backend and load tool on core {LOAD_CORE}"),
        "",
        "| target | req/s (median) | min - max | p50 ms | p99 ms | vs baseline: req/s | p50 | p99 "
        "| server CPU % | server CPU us/req | vs baseline: CPU/req | backend CPU % | load CPU % "
        "| max noise % | errors / non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in TARGETS:
        s = summary.get(target.key)
        if s is None:
            continue
        ratio = s.get("ratio")
        rr = (
            (f"**{ratio['rps']:.2f}x**", f"{ratio['p50']:.2f}x", f"{ratio['p99']:.2f}x")
            if ratio
            else ("(baseline)", "", "")
        )
        cost = f"{ratio['cpu_cost']:.2f}x" if ratio else ""
        lines.append(
            f"| {s['label']} | {s['rps']:,.0f} | {s['rps_min']:,.0f} - {s['rps_max']:,.0f} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {rr[0]} | {rr[1]} | {rr[2]} "
            f"| {s['server_cpu_pct']:.0f} | {s['server_us_per_req']:.0f} | {cost} "
            f"| {s['backend_cpu_pct']:.0f} | {s['load_cpu_pct']:.0f} | {s['noise_pct_max']:.0f} "
            f"| {s['errors']} / {s['non_2xx']} |"
        )
    proxy = summary.get("portway_proxy", {}).get("ratio")
    if proxy:
        lines += [
            "",
            "Ratios are medians of per-run ratios (each run measures Portway right after its baseline).",
        ]
        runs = len(proxy["rps_per_run"])
        if proxy.get("quiet_runs", 0) == 0:
            verdict = (
                f"inconclusive: no run with both sides under {meta.get('max_noise_pct', 20.0):.0f} % noise"
            )
            rps, cost = proxy["rps"], proxy["cpu_cost"]
        else:
            rps, cost = proxy["rps_quiet"], proxy["cpu_cost_quiet"]
            if rps >= 0.8 and cost >= 0.8:
                verdict = "met"
            elif rps >= 0.8 or cost >= 0.8:
                verdict = "borderline (req/s and CPU per request disagree)"
            else:
                verdict = "NOT met"
        lines += [
            "",
            f"Target (Portway HTTP_PROXY >= 0.8x the minimal aiohttp proxy, one core): **{verdict}**: "
            f"req/s {rps:.2f}x, server CPU per request {cost:.2f}x over the {proxy.get('quiet_runs', 0)} of "
            f"{runs} runs where neither side had more than {meta.get('max_noise_pct', 20.0):.0f} % of a core "
            f"of noise (all runs: req/s {', '.join(f'{x:.2f}' for x in proxy['rps_per_run'])}; "
            f"CPU per request {', '.join(f'{x:.2f}' for x in proxy['cpu_cost_per_run'])}).",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RunDefaults:
    """Defaults of the run options shared by the HTTP benchmarks (:func:`run_parser`)."""

    runs: int = 3
    redo: int = 1
    quiet_timeout: float = 20.0


def run_parser(description: str | None, defaults: RunDefaults) -> argparse.ArgumentParser:
    """A parser with the options every wrk-driven benchmark here shares; finish with
    :func:`finish_run_args`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run x 3 s, 1 s warm-up")
    parser.add_argument("--runs", type=int, help=f"measured runs per target (default {defaults.runs})")
    parser.add_argument("--duration", type=int, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up before each run (default 2)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--tool", choices=("auto", "wrk", "loadgen"), default="auto")
    parser.add_argument(
        "--max-noise", type=float, default=20.0, help="redo a run above this noise (%% of a core)"
    )
    parser.add_argument("--redo", type=int, help=f"redos per noisy run (default {defaults.redo}; --quick: 0)")
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        help=f"max seconds to wait for quiet before a run (default {defaults.quiet_timeout:g}; --quick: 3)",
    )
    parser.add_argument("--portway-arg", action="append", default=[], help="extra argument for the launcher")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", type=Path, help="only re-render the table of an existing results JSON")
    return parser


def finish_run_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, defaults: RunDefaults
) -> argparse.Namespace:
    """Apply the defaults (``--quick`` ones included) and check the bounds."""
    args.runs = args.runs or (1 if args.quick else defaults.runs)
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.redo = args.redo if args.redo is not None else (0 if args.quick else defaults.redo)
    args.quiet_timeout = (
        args.quiet_timeout
        if args.quiet_timeout is not None
        else (3.0 if args.quick else defaults.quiet_timeout)
    )
    if not (0 <= args.redo <= 5 and 0 <= args.quiet_timeout <= 300):
        parser.error("bounds: 0 <= --redo <= 5, 0 <= --quiet-timeout <= 300")
    if not (1 <= args.duration <= 120 and 1 <= args.runs <= 20 and 0 <= args.warmup <= 30):
        parser.error("bounds: 1 <= --duration <= 120, 1 <= --runs <= 20, 0 <= --warmup <= 30")
    if not 1 <= args.connections <= 1000:
        parser.error("--connections must be in 1..1000")
    return args


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = RunDefaults()
    parser = run_parser(__doc__.splitlines()[0] if __doc__ else None, defaults)
    parser.add_argument("--group", choices=("all", "python", "proxy"), default="all")
    parser.add_argument("--workers", type=int, default=1, help="Portway worker processes for /dev/pyproc")
    parser.add_argument(
        "--portway-launcher",
        type=Path,
        default=SERVERS / "portway_server.py",
        help="script that serves Portway",
    )
    return finish_run_args(parser, parser.parse_args(argv), defaults)


def pick_tool(args: argparse.Namespace) -> str | None:
    """``wrk`` when installed (or asked for), else ``loadgen.py``; None: ``--tool wrk`` without wrk."""
    if args.tool == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed", file=sys.stderr)
        return None
    use_wrk = args.tool == "wrk" or (args.tool == "auto" and shutil.which("wrk") is not None)
    return "wrk" if use_wrk else "loadgen.py"


def load_results(path: Path) -> tuple[dict[str, Any], list[RunRecord]]:
    """The meta and the raw runs of a results JSON."""
    data = json.loads(path.read_text())
    records = [RunRecord(r["target"], r["run"], [Attempt(**a) for a in r["attempts"]]) for r in data["runs"]]
    return data["meta"], records


def save_results(
    out: Path, name: str, meta: dict[str, Any], summary: dict[str, Any], records: list[RunRecord], table: str
) -> tuple[Path, Path]:
    """Write ``out/<name>.json`` (meta, summary, every attempt) and ``out/<name>.md`` (the table)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    md_path = out / f"{name}.md"
    payload = {
        "meta": meta,
        "summary": summary,
        "runs": [
            {"target": r.target, "run": r.run, "attempts": [asdict(a) for a in r.attempts]} for r in records
        ],
    }
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(table)
    print()
    print(table)
    print(f"wrote {_shown(json_path)} and {_shown(md_path)}")
    return json_path, md_path


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def report(path: Path) -> int:
    """Print (and rewrite next to it) the markdown table of a results JSON from its raw runs."""
    meta, records = load_results(path)
    table = markdown(summarize(records, meta.get("max_noise_pct", 20.0)), meta)
    path.with_suffix(".md").write_text(table)
    print(table)
    return 0


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def stopping(children: Children, meta: dict[str, Any]) -> Iterator[None]:
    """Every child is stopped on the way out; Ctrl-C (or SIGTERM/SIGHUP, see
    :func:`handle_signals`) ends the block early and is noted in ``meta["interrupted"]``."""
    try:
        yield
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc or 'Ctrl-C'}): stopping every child", file=sys.stderr)
        meta["interrupted"] = str(exc) or "SIGINT"
    finally:
        children.stop_all()


def handle_signals() -> None:
    """SIGTERM and SIGHUP stop a benchmark like Ctrl-C (children killed, partial results kept)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    handle_signals()
    tool_name = pick_tool(args)
    if tool_name is None:
        return 2
    tool = LoadTool(tool_name, args.connections)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    targets = [t for t in TARGETS if args.group in ("all", t.group)]
    needed = {t.server for t in targets}
    children = Children(args.out / f"logs-{stamp}")
    py = sys.executable
    ports = {name: free_port() for name in ("backend", "minimal_server", "minimal_proxy", "portway")}
    backend_url = f"http://{HOST}:{ports['backend']}"
    meta = run_meta(
        args,
        tool,
        argv,
        f"B: servers under test on core {SERVER_CORE}; backend and load tool on core {LOAD_CORE}",
    )
    records: list[RunRecord] = []
    with stopping(children, meta):
        started: dict[str, Child] = {}
        specs: dict[str, tuple[list[str], int]] = {
            "backend": ([py, str(SERVERS / "backend.py"), "--port", str(ports["backend"])], LOAD_CORE),
            "minimal_server": (
                [py, str(SERVERS / "minimal_server.py"), "--port", str(ports["minimal_server"])],
                SERVER_CORE,
            ),
            "minimal_proxy": (
                [
                    py,
                    str(SERVERS / "minimal_proxy.py"),
                    "--port",
                    str(ports["minimal_proxy"]),
                    "--backend",
                    backend_url,
                ],
                SERVER_CORE,
            ),
            "portway": (
                [
                    py,
                    str(args.portway_launcher),
                    "--port",
                    str(ports["portway"]),
                    "--backend",
                    backend_url,
                    "--workers",
                    str(args.workers),
                    *args.portway_arg,
                ],
                SERVER_CORE,
            ),
        }
        for name in ("backend", *sorted(needed)):
            argv_, core = specs[name]
            started[name] = children.start(name, argv_, core)
            meta["servers"][name] = "taskset -c " + str(core) + " " + " ".join(argv_)
        for name, child in started.items():
            wait_ready(child, f"http://{HOST}:{ports[name]}/")
            print(f"started {name} (pid {child.pid}, core {child.core}, port {ports[name]})", flush=True)
        for target in targets:
            url = f"http://{HOST}:{ports[target.server]}{target.path}"
            status, body = fetch(url, timeout=10)
            if status != 200 or target.expect not in body:
                raise RuntimeError(f"{target.key}: {url} answered {status} {body[:300]!r}")
            print(f"check {target.key}: 200 {body[:80]!r}", flush=True)

        for run in range(1, args.runs + 1):
            for target in targets:

                def describe(attempt: Attempt, key: str = target.key) -> str:
                    cpu = attempt.cpu
                    return (
                        f"{key:<15} {attempt.rps:>9,.0f} req/s  "
                        f"{cpu_us_per_request(attempt):5.0f} us/req  "
                        f"p50 {attempt.p50_ms:6.2f} ms  p99 {attempt.p99_ms:6.2f} ms  "
                        f"cpu server {cpu['server']:.0f}% backend {cpu['backend']:.0f}% "
                        f"load {cpu['load']:.0f}% "
                        f"noise {cpu['noise']:.0f}% core0 {cpu.get('core0_busy', 0):.0f}% "
                        f"core1 {cpu.get('core1_busy', 0):.0f}%"
                    )

                url = f"http://{HOST}:{ports[target.server]}{target.path}"
                trees = {"server": started[target.server].pid, "backend": started["backend"].pid}
                records.append(measure(tool, url, trees, args, RunRecord(target.key, run), describe))
                check_alive(started)
    if meta.get("interrupted") and not records:
        return 130

    summary = summarize(records, args.max_noise)
    save_results(args.out, f"results-{stamp}", meta, summary, records, markdown(summary, meta))
    return 130 if meta.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())

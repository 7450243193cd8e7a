"""Portway's WebSocket benchmark: four figures, each beside a raw aiohttp baseline measured in the same run.

    .venv/bin/python bench/bench_ws.py            # default: 3 runs (~4-5 min)
    .venv/bin/python bench/bench_ws.py --quick    # smoke run: 1 run, short windows (~1 min)
    .venv/bin/python bench/bench_ws.py --runs 5 --figures a,d --echo-duration 10

Figures (the issue's "Done when"), Portway vs ``servers/ws_raw.py`` (aiohttp + uvloop, defaults):

* **(a)** echo round trips/s: ``clients/ws_load.py echo``, 100 connections in a closed loop, one
  79-byte JSON text message each, through Portway's ``$default`` route with a route response to an
  in-process ``async def`` Python handler, vs the raw server's ``/ws`` echo. Target >= 0.4x.
* **(b)** server memory per idle connection: (VmRSS with N idle connections - VmRSS after a warm-up
  with 0 connections) / N, N = 10,000 opened by 2 ``ws_load.py hold`` processes of 5,000 (the fd
  limit is 20,000 per process; each server then holds 10,000 sockets plus ~20 fds of its own, each
  client 5,000 plus a few). Each run starts both servers afresh. Target <= 20 KB.
* **(c)** ``@connections`` POST/s: ``wrk -t1 -c64`` (``clients/wrk_post_ids.lua``) posting the 79-byte
  message to 1,000 connections in turn, held by one ``ws_load.py hold`` process that counts what
  arrives, vs the raw server's ``POST /send/{i}``; with the fraction of 200s that were delivered.
* **(d)** broadcast deliveries/s to the N connections of (b): one ``POST /dev/@broadcast`` vs the
  raw server's ``POST /broadcast`` (a plain ``send_str`` loop), 5 per run; deliveries/s =
  receipts / (last receipt - POST sent), timed by the clients (CLOCK_MONOTONIC). Target >= 0.8x.

Layout A of ``/work/shared/reference/ceilings.md``: both servers on core 0 (only one is loaded at a
time), every load process (and this script) on core 1. Before each measurement the script waits
(bounded) for the machine to be quiet and records the CPU other tenants used during it ("noise");
a noisy echo or POST measurement is redone once. Medians over runs (over every broadcast for (d))
go to stdout as a markdown table and, with every raw sample, to ``bench/out/ws-results-<UTC>.json``
/ ``.md``; process logs to ``bench/out/ws-logs-<UTC>/``. Every child is killed at the end, also on
Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
SERVERS = BENCH / "servers"
CLIENT = BENCH / "clients" / "ws_load.py"
WRK_SCRIPT = BENCH / "clients" / "wrk_post_ids.lua"
HOST = "127.0.0.1"
SERVER_CORE = 0
LOAD_CORE = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
FD_LIMIT = 20_000
SERVER_NAMES = ("raw", "portway")
LABELS = {"raw": "raw aiohttp", "portway": "Portway"}
# The echo client's message (79 bytes); (c) and (d) send the same size.
MESSAGE = '{"action":"message","data":"hello from the websocket benchmark client hello f"}'
assert len(MESSAGE) == 79


# -- processes -------------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[str]
    lines: queue.Queue[dict[str, Any]] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command.encode() + b"\n")
        self.popen.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next JSON line whose ``event`` is ``event`` (others are skipped)."""
        assert self.lines is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"{self.name}: no {event!r} within {timeout:.0f} s\n{tail(self.log_path)}")
            try:
                item = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    raise RuntimeError(
                        f"{self.name} exited ({self.popen.returncode}) before {event!r}:\n"
                        + tail(self.log_path)
                    ) from None
                continue
            if item.get("event") == event:
                return item


def _pump(stream: IO[bytes], lines: queue.Queue[dict[str, Any]], log: IO[str]) -> None:
    for raw in stream:
        text = raw.decode(errors="replace")
        log.write(text)
        log.flush()
        with contextlib.suppress(ValueError):
            lines.put(json.loads(text))


class Children:
    """Every process this script starts, each in its own session so its whole group can be killed."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.items: list[Child] = []
        self._count = 0

    def start(self, name: str, argv: list[str], core: int, *, control: bool = False) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._count += 1
        log_path = self.log_dir / f"{self._count:03d}-{name}.log"
        log = log_path.open("w")
        cmd = ["taskset", "-c", str(core), *argv]
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        popen = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=subprocess.PIPE if control else log,
            stderr=log if control else subprocess.STDOUT,
            stdin=subprocess.PIPE if control else subprocess.DEVNULL,
            start_new_session=True,
        )
        child = Child(name, popen, log_path, log)
        if control:
            child.lines = queue.Queue()
            assert popen.stdout is not None
            threading.Thread(target=_pump, args=(popen.stdout, child.lines, log), daemon=True).start()
        self.items.append(child)
        return child

    def stop(self, child: Child, grace: float = 8.0) -> None:
        if child.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(timeout=2)
        if child.popen.stdin is not None:  # stdout: the pump thread ends at EOF by itself
            with contextlib.suppress(OSError):
                child.popen.stdin.close()
        with contextlib.suppress(ValueError):
            child.log.flush()
        if child in self.items:
            self.items.remove(child)

    def stop_all(self) -> None:
        for child in list(self.items):
            self.stop(child, grace=5.0)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def http(method: str, url: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_ready(child: Child, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.popen.returncode}:\n{tail(child.log_path)}")
        try:
            http("GET", url, timeout=1.0)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:.0f} s:\n{tail(child.log_path)}")


# -- /proc ---------------------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def proc_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def _all_ticks() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime + stime) for every process."""
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
        out[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return out


def _ours(stats: dict[int, tuple[int, int]]) -> set[int]:
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    found, stack = {os.getpid()}, [os.getpid()]
    while stack:
        for kid in kids.get(stack.pop(), []):
            if kid not in found:
                found.add(kid)
                stack.append(kid)
    return found


class Noise:
    """CPU (% of one core) used by processes that are neither ours nor kernel threads, over a window."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.s0 = _all_ticks()

    def stop(self) -> float:
        elapsed = max(1e-6, time.monotonic() - self.t0)
        s1 = _all_ticks()
        ours = _ours(s1) | _ours(self.s0)
        other = 0
        for pid, (ppid, ticks) in s1.items():
            if pid in ours or pid in (1, 2) or ppid == 2:
                continue
            other += ticks - self.s0.get(pid, (0, 0))[1]
        return round(100 * other / CLK_TCK / elapsed, 1)


def machine_busy_pct(window: float = 0.5) -> float:
    def busy() -> int:
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq = (parts + [0] * 7)[:7]
        return user + nice + system + irq + softirq

    b0 = busy()
    time.sleep(window)
    return 100 * (busy() - b0) / CLK_TCK / window


def wait_for_quiet(threshold_pct: float, timeout_s: float) -> float:
    """Wait until the whole machine uses less than ``threshold_pct`` of a core; the seconds waited."""
    start = time.monotonic()
    while machine_busy_pct() >= threshold_pct and time.monotonic() - start < timeout_s:
        pass
    return round(time.monotonic() - start, 1)


# -- the benchmark -------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    child: Child
    port: int
    ws_url: str
    broadcast_url: str
    post_prefix: str  # + id
    list_url: str

    def count(self) -> int:
        status, body = http("GET", self.list_url, timeout=30)
        if status != 200:
            raise RuntimeError(f"{self.name}: {self.list_url} answered {status}")
        return int(json.loads(body)["count"])

    def ids(self) -> list[str]:
        status, body = http("GET", self.list_url, timeout=30)
        if status != 200:
            raise RuntimeError(f"{self.name}: {self.list_url} answered {status}")
        return [str(i) for i in json.loads(body)["connections"]]


@dataclass
class Bench:
    args: argparse.Namespace
    children: Children
    run_dir: Path
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def record(self, figure: str, sample: dict[str, Any]) -> None:
        self.results.setdefault(figure, []).append(sample)

    def client_cmd(self, mode: str, url: str, conns: int, *extra: str) -> list[str]:
        return [sys.executable, str(CLIENT), mode, "--url", url, "--conns", str(conns), *extra]

    def quiet(self) -> float:
        return wait_for_quiet(self.args.max_noise, self.args.quiet_timeout)

    # servers ---------------------------------------------------------------------------------------

    def start_servers(self) -> dict[str, Server]:
        py = sys.executable
        ports = {name: free_port() for name in SERVER_NAMES}
        raw = self.children.start(
            "ws_raw", [py, str(SERVERS / "ws_raw.py"), "--port", str(ports["raw"])], SERVER_CORE
        )
        portway = self.children.start(
            "portway_ws",
            [py, str(self.args.portway_launcher), "--port", str(ports["portway"]), *self.args.portway_arg],
            SERVER_CORE,
        )
        base = {name: f"http://{HOST}:{port}" for name, port in ports.items()}
        servers = {
            "raw": Server(
                "raw",
                raw,
                ports["raw"],
                f"ws://{HOST}:{ports['raw']}/ws",
                base["raw"] + "/broadcast",
                "/send/",
                base["raw"] + "/conns",
            ),
            "portway": Server(
                "portway",
                portway,
                ports["portway"],
                f"ws://{HOST}:{ports['portway']}/dev",
                base["portway"] + "/dev/@broadcast",
                "/dev/@connections/",
                base["portway"] + "/dev/@connections",
            ),
        }
        for name, server in servers.items():
            wait_ready(server.child, base[name] + "/")
        return servers

    def warm_up(self, server: Server) -> None:
        """A short echo on a fresh server (imports, first handler load, allocator) before any figure."""
        cmd = self.client_cmd(
            "echo", server.ws_url, self.args.echo_conns, "--duration", "1", "--warmup", "0.5"
        )
        result = self.run_client(cmd, timeout=60)
        if result.get("round_trips", 0) <= 0 or result.get("mismatches"):
            raise RuntimeError(f"{server.name}: warm-up echo failed: {result}")

    def run_client(self, cmd: list[str], timeout: float) -> dict[str, Any]:
        full = ["taskset", "-c", str(LOAD_CORE), *cmd]
        proc = subprocess.run(full, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
        with (self.run_dir / "clients.log").open("a") as log:
            log.write("$ " + " ".join(full) + "\n" + proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(full)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        for line in reversed(proc.stdout.splitlines()):
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if data.get("event") == "result":
                    return dict(data)
        raise RuntimeError(f"no result from {' '.join(full)}:\n{proc.stdout}\n{proc.stderr}")

    def wait_drained(self, server: Server, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        count = server.count()
        while count and time.monotonic() < deadline:
            time.sleep(0.2)
            count = server.count()
        return count

    # (b) + (d) -------------------------------------------------------------------------------------

    def idle_and_broadcast(self, run: int, server: Server) -> None:
        args = self.args
        waited = self.quiet()
        rss0 = rss_kb(server.child.pid)
        per_proc = [args.idle_conns // args.client_procs] * args.client_procs
        per_proc[-1] += args.idle_conns - sum(per_proc)
        holders = [
            self.children.start(
                f"hold-{server.name}-{i}",
                self.client_cmd("hold", server.ws_url, n, "--control", "--duration", "600"),
                LOAD_CORE,
                control=True,
            )
            for i, n in enumerate(per_proc)
        ]
        try:
            ready = [h.expect("ready", timeout=120) for h in holders]
            opened = sum(r["open"] for r in ready)
            failed = sum(r["failed"] for r in ready)
            open_s = max(r["open_s"] for r in ready)
            time.sleep(args.settle)
            server_count = server.count()
            rss1 = rss_kb(server.child.pid)
            kb_per_conn = (rss1 - rss0) / opened if opened else 0.0
            sample_b = {
                "run": run,
                "server": server.name,
                "conns": opened,
                "open_failed": failed,
                "server_count": server_count,
                "rss0_kb": rss0,
                "rssN_kb": rss1,
                "kb_per_conn": round(kb_per_conn, 2),
                "open_rate": round(opened / open_s, 1) if open_s else 0.0,
                "open_s": open_s,
                "quiet_wait_s": waited,
                "command": f"{len(holders)} x taskset -c {LOAD_CORE} "
                + " ".join(self.client_cmd("hold", server.ws_url, per_proc[0], "--control")[1:]),
            }
            self.record("b", sample_b)
            print(
                f"run {run} (b) {server.name:<8} {opened:,} idle conns (server counts {server_count:,}): "
                f"RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB = {kb_per_conn:.2f} KB/conn; "
                f"opened at {sample_b['open_rate']:,.0f}/s",
                flush=True,
            )
            if "d" in args.figures:
                for k in range(1, args.broadcasts + 1):
                    self.record("d", self.broadcast(run, k, server, holders, opened))
                    time.sleep(0.3)
            sample_b["rss_after_broadcasts_kb"] = rss_kb(server.child.pid)
            for h in holders:
                h.send("quit")
            for h in holders:
                with contextlib.suppress(RuntimeError):
                    h.expect("result", timeout=60)
        finally:
            for h in holders:
                self.children.stop(h)
        left = self.wait_drained(server)
        if left:
            print(
                f"warning: {server.name} still counts {left} connections after the clients quit", flush=True
            )

    def broadcast(
        self, run: int, k: int, server: Server, holders: list[Child], expected: int
    ) -> dict[str, Any]:
        for h in holders:
            h.send("reset")
        for h in holders:
            h.expect("reset", timeout=10)
        noise = Noise()
        ticks0 = proc_ticks(server.child.pid)
        t0 = time.monotonic()
        status, body = http("POST", server.broadcast_url, MESSAGE.encode(), timeout=60)
        t_resp = time.monotonic()
        if status != 200:
            raise RuntimeError(f"{server.name}: broadcast answered {status} {body[:200]!r}")
        delivered_reported = int(json.loads(body)["delivered"])
        deadline = t_resp + self.args.broadcast_timeout
        stats: list[dict[str, Any]] = []
        while True:
            for h in holders:
                h.send("stats")
            stats = [h.expect("stats", timeout=10) for h in holders]
            received = sum(s["received"] for s in stats)
            if received >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        ticks1 = proc_ticks(server.child.pid)
        firsts = [s["first"] for s in stats if s["first"] is not None]
        lasts = [s["last"] for s in stats if s["last"] is not None]
        first_ms = (min(firsts) - t0) * 1e3 if firsts else None
        last_ms = (max(lasts) - t0) * 1e3 if lasts else None
        rate = received / (last_ms / 1e3) if last_ms else 0.0
        sample = {
            "run": run,
            "broadcast": k,
            "server": server.name,
            "conns": expected,
            "received": received,
            "delivered_reported": delivered_reported,
            "deliveries_per_s": round(rate, 1),
            "first_ms": round(first_ms, 2) if first_ms is not None else None,
            "last_ms": round(last_ms, 2) if last_ms is not None else None,
            "post_ms": round((t_resp - t0) * 1e3, 2),
            "server_cpu_ticks": ticks1 - ticks0,
            "noise_pct": noise.stop(),
        }
        print(
            f"run {run} (d) {server.name:<8} broadcast {k}: {received:,}/{expected:,} received, "
            f"{rate:,.0f} deliveries/s, first {sample['first_ms']} ms, last {sample['last_ms']} ms, "
            f"POST answered after {sample['post_ms']} ms, noise {sample['noise_pct']}%",
            flush=True,
        )
        return sample

    # (a) -------------------------------------------------------------------------------------------

    def echo(self, run: int, server: Server) -> None:
        args = self.args
        cmd = self.client_cmd(
            "echo",
            server.ws_url,
            args.echo_conns,
            "--duration",
            str(args.echo_duration),
            "--warmup",
            str(args.warmup),
            "--impl",
            args.impl,
            "--server-pid",
            str(server.child.pid),
        )
        attempts: list[dict[str, Any]] = []
        for attempt in range(args.redo + 1):
            waited = self.quiet()
            noise = Noise()
            result = self.run_client(cmd, timeout=args.echo_duration + args.warmup + 60)
            noise_pct = noise.stop()
            rps = float(result["rps"])
            server_cpu = float(result.get("server_cpu_pct", 0.0))
            sample = {
                "run": run,
                "server": server.name,
                "attempt": attempt,
                "rps": rps,
                "p50_ms": result["p50_ms"],
                "p99_ms": result["p99_ms"],
                "max_ms": result["max_ms"],
                "round_trips": result["round_trips"],
                "mismatches": result["mismatches"],
                "server_cpu_pct": server_cpu,
                "client_cpu_pct": result["client_cpu_pct"],
                "server_us_per_rt": round(server_cpu / 100 * 1e6 / rps, 2) if rps else 0.0,
                "noise_pct": noise_pct,
                "quiet_wait_s": waited,
                "command": f"taskset -c {LOAD_CORE} " + " ".join(cmd[1:]),
            }
            noisy = noise_pct > args.max_noise
            print(
                f"run {run} (a) {server.name:<8} {rps:>9,.0f} round trips/s  p50 {result['p50_ms']:.2f} ms  "
                f"p99 {result['p99_ms']:.2f} ms  server {server_cpu:.0f}% "
                f"({sample['server_us_per_rt']} us/rt)  "
                f"client {result['client_cpu_pct']:.0f}%  noise {noise_pct:.0f}%"
                + ("  (noisy, redo)" if noisy and attempt < args.redo else ""),
                flush=True,
            )
            attempts.append(sample)
            if not noisy:
                break
        self.record("a", least_noisy(attempts))

    # (c) -------------------------------------------------------------------------------------------

    def posts(self, run: int, server: Server) -> None:
        args = self.args
        holder = self.children.start(
            f"posts-{server.name}",
            self.client_cmd("hold", server.ws_url, args.post_conns, "--control", "--duration", "600"),
            LOAD_CORE,
            control=True,
        )
        try:
            ready = holder.expect("ready", timeout=60)
            ids = server.ids()
            if len(ids) != ready["open"]:
                raise RuntimeError(f"{server.name}: {len(ids)} ids listed, {ready['open']} open")
            ids_file = self.run_dir / f"ids-{server.name}.txt"
            ids_file.write_text("\n".join(ids) + "\n")
            base = f"http://{HOST}:{server.port}"

            def wrk(duration: float) -> tuple[dict[str, Any], str]:
                cmd = [
                    "taskset",
                    "-c",
                    str(LOAD_CORE),
                    "wrk",
                    "-t1",
                    f"-c{args.post_http_conns}",
                    f"-d{max(1, round(duration))}s",
                    "--latency",
                    "-s",
                    str(WRK_SCRIPT),
                    base,
                    "--",
                    str(ids_file),
                    server.post_prefix,
                    MESSAGE,
                ]
                proc = subprocess.run(
                    cmd, cwd=ROOT, capture_output=True, text=True, timeout=duration + 60, check=False
                )
                with (self.run_dir / "clients.log").open("a") as log:
                    log.write("$ " + " ".join(cmd) + "\n" + proc.stdout + proc.stderr)
                if proc.returncode != 0:
                    raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
                return parse_wrk(proc.stdout), " ".join(cmd)

            attempts: list[dict[str, Any]] = []
            for attempt in range(args.redo + 1):
                waited = self.quiet()
                if args.warmup:
                    wrk(args.warmup)
                time.sleep(0.3)
                holder.send("reset")
                holder.expect("reset", timeout=10)
                noise = Noise()
                ticks0 = proc_ticks(server.child.pid)
                t0 = time.monotonic()
                result, command = wrk(args.post_duration)
                elapsed = time.monotonic() - t0
                ticks1 = proc_ticks(server.child.pid)
                noise_pct = noise.stop()
                received, previous = -1, -2
                deadline = time.monotonic() + 5
                while received != previous and time.monotonic() < deadline:
                    previous = received
                    time.sleep(0.2)
                    holder.send("stats")
                    received = holder.expect("stats", timeout=10)["received"]
                ok = result["requests"] - result["non_2xx"]
                server_cpu = round(100 * (ticks1 - ticks0) / CLK_TCK / elapsed, 1)
                sample = {
                    "run": run,
                    "server": server.name,
                    "attempt": attempt,
                    "rps": result["rps"],
                    "p50_ms": result.get("p50_ms", 0.0),
                    "p99_ms": result.get("p99_ms", 0.0),
                    "requests": result["requests"],
                    "non_2xx": result["non_2xx"],
                    "errors": result["errors"],
                    "received": received,
                    "delivered_fraction": round(received / ok, 4) if ok else 0.0,
                    "server_cpu_pct": server_cpu,
                    "server_us_per_post": round(server_cpu / 100 * 1e6 / result["rps"], 2)
                    if result["rps"]
                    else 0.0,
                    "noise_pct": noise_pct,
                    "quiet_wait_s": waited,
                    "command": command,
                }
                noisy = noise_pct > args.max_noise
                print(
                    f"run {run} (c) {server.name:<8} {result['rps']:>9,.0f} POST/s  "
                    f"p50 {sample['p50_ms']:.2f} ms  p99 {sample['p99_ms']:.2f} ms  "
                    f"non-2xx {result['non_2xx']}  delivered {received:,}/{ok:,}  "
                    f"server {server_cpu:.0f}% ({sample['server_us_per_post']} us/POST)  "
                    f"noise {noise_pct:.0f}%" + ("  (noisy, redo)" if noisy and attempt < args.redo else ""),
                    flush=True,
                )
                attempts.append(sample)
                if not noisy:
                    break
            self.record("c", least_noisy(attempts))
            holder.send("quit")
            with contextlib.suppress(RuntimeError):
                holder.expect("result", timeout=30)
        finally:
            self.children.stop(holder)
        self.wait_drained(server)


def least_noisy(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """The attempt other tenants disturbed least (the latest of equals); the others are kept inside it."""
    kept = dict(min(reversed(attempts), key=lambda a: a["noise_pct"]))
    kept["discarded_attempts"] = [a for a in attempts if a["attempt"] != kept["attempt"]]
    return kept


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    match = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if not match:
        raise ValueError(f"no Requests/sec in wrk output:\n{text}")
    out["rps"] = float(match.group(1))
    for pct, value, unit in re.findall(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        out[f"p{pct}_ms"] = round(float(value) * _UNITS[unit], 3)
    match = re.search(r"(\d+) requests in", text)
    out["requests"] = int(match.group(1)) if match else 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["errors"] = sum(int(x) for x in match.groups()) if match else 0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(match.group(1)) if match else 0
    return out


# -- summary -------------------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}

    def by(figure: str, server: str) -> list[dict[str, Any]]:
        return [s for s in results.get(figure, []) if s["server"] == server]

    def per_run_ratio(figure: str, key: str) -> list[float]:
        ratios = []
        for p in by(figure, "portway"):
            base = [
                s[key]
                for s in by(figure, "raw")
                if s["run"] == p["run"] and s.get("broadcast") == p.get("broadcast")
            ]
            if base and base[0]:
                ratios.append(round(p[key] / base[0], 3))
        return ratios

    for figure, key in (("a", "rps"), ("b", "kb_per_conn"), ("c", "rps"), ("d", "deliveries_per_s")):
        fig: dict[str, Any] = {}
        for server in SERVER_NAMES:
            samples = by(figure, server)
            if not samples:
                continue
            values = [float(s[key]) for s in samples]
            entry: dict[str, Any] = {
                "samples": len(samples),
                key: med(values),
                "min": min(values),
                "max": max(values),
                "noise_pct_max": max((s.get("noise_pct", 0.0) for s in samples), default=0.0),
            }
            for extra in (
                "p50_ms",
                "p99_ms",
                "server_cpu_pct",
                "client_cpu_pct",
                "server_us_per_rt",
                "server_us_per_post",
                "delivered_fraction",
                "open_rate",
                "rss0_kb",
                "rssN_kb",
                "first_ms",
                "last_ms",
                "post_ms",
                "conns",
            ):
                vals = [float(s[extra]) for s in samples if s.get(extra) is not None]
                if vals:
                    entry[extra] = med(vals)
            if figure == "d":
                ticks = sum(s["server_cpu_ticks"] for s in samples)
                received = sum(s["received"] for s in samples)
                entry["received_fraction_min"] = min(s["received"] / s["conns"] for s in samples)
                entry["server_us_per_delivery"] = (
                    round(ticks / CLK_TCK * 1e6 / received, 2) if received else 0
                )
            if figure == "c":
                entry["non_2xx"] = sum(s["non_2xx"] for s in samples)
                entry["errors"] = sum(s["errors"] for s in samples)
            fig[server] = entry
        if "raw" in fig and "portway" in fig:
            base = fig["raw"][key]
            fig["ratio"] = round(fig["portway"][key] / base, 3) if base else 0.0
            fig["ratio_per_sample"] = per_run_ratio(figure, key)
            cost_key = {
                "a": "server_us_per_rt",
                "c": "server_us_per_post",
                "d": "server_us_per_delivery",
            }.get(figure)
            if cost_key and fig["portway"].get(cost_key):
                fig["cpu_cost_ratio"] = round(fig["raw"][cost_key] / fig["portway"][cost_key], 3)
        if fig:
            summary[figure] = fig
    summary["targets"] = {}
    for key, target, good in (
        ("a", ">= 0.4x raw", lambda x: x >= 0.4),
        ("b", "<= 20 KB/conn", lambda x: x <= 20),
        ("d", ">= 0.8x raw", lambda x: x >= 0.8),
    ):
        fig = summary.get(key, {})
        value = fig.get("portway", {}).get("kb_per_conn") if key == "b" else fig.get("ratio")
        if value is None:
            continue
        entry: dict[str, Any] = {"target": target, "value": value, "met": bool(good(value))}
        if "cpu_cost_ratio" in fig:
            # The ratio both would reach on a full, undisturbed core (server CPU per operation).
            entry["cpu_cost_ratio"] = fig["cpu_cost_ratio"]
            entry["met_by_cpu_cost"] = bool(good(fig["cpu_cost_ratio"]))
        summary["targets"][key] = entry
    return summary


def _verdict(summary: dict[str, Any], key: str) -> tuple[str, str]:
    t = summary.get("targets", {}).get(key)
    if not t:
        return "", ""
    met = "**yes**" if t["met"] else "**NO**"
    if "met_by_cpu_cost" in t:
        met += f" (by CPU cost: {'yes' if t['met_by_cpu_cost'] else 'no'})"
    return t["target"], met


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    dirty = " + uncommitted gateway changes" if meta["git"]["gateway_tree_dirty"] else ""
    lines = [
        f"{meta['started_utc']} UTC, commit {meta['git']['commit']}{dirty}; {meta['runs']} run(s) "
        f"(medians); layout A (servers on core {SERVER_CORE}, load on core {LOAD_CORE}); (a) "
        f"{meta['echo_conns']} conns x {meta['echo_duration_s']:g} s; (b)/(d) {meta['idle_conns']:,} idle "
        f"conns from {meta['client_procs']} client processes, {meta['broadcasts']} broadcasts per run; (c) "
        f"wrk -c{meta['post_http_conns']} x {meta['post_duration_s']:g} s over {meta['post_conns']:,} conns; "
        f"warm-up {meta['warmup_s']:g} s; Portway: `{Path(meta['portway_launcher'].split()[0]).name}"
        + (
            " " + " ".join(meta["portway_launcher"].split()[1:])
            if len(meta["portway_launcher"].split()) > 1
            else ""
        )
        + "`.",
        "",
        "| figure | raw aiohttp | Portway | Portway / raw | same, by server CPU per op | target | met "
        "| notes |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    a = summary.get("a")
    if a and "raw" in a and "portway" in a:
        r, p = a["raw"], a["portway"]
        tgt, met = _verdict(summary, "a")
        lines.append(
            f"| (a) echo round trips/s (100 conns, 79 B; Portway: `$default` + route response, Python "
            f"handler) | {r['rps']:,.0f} | {p['rps']:,.0f} | **{a['ratio']:.2f}x** "
            f"| {a.get('cpu_cost_ratio', 0):.2f}x | {tgt} | {met} "
            f"| per run {', '.join(f'{x:.2f}' for x in a['ratio_per_sample'])}; server CPU per round trip "
            f"{r.get('server_us_per_rt', 0):.1f} vs {p.get('server_us_per_rt', 0):.1f} us; server busy "
            f"{r.get('server_cpu_pct', 0):.0f}% vs {p.get('server_cpu_pct', 0):.0f}%, client "
            f"{r.get('client_cpu_pct', 0):.0f}% vs {p.get('client_cpu_pct', 0):.0f}% |"
        )
        lines.append(
            f"| (a) RTT p50 / p99, ms | {r.get('p50_ms', 0):.2f} / {r.get('p99_ms', 0):.2f} "
            f"| {p.get('p50_ms', 0):.2f} / {p.get('p99_ms', 0):.2f} | | | | "
            "| closed loop: p50 ~ conns / rate |"
        )
    b = summary.get("b")
    if b and "portway" in b:
        r, p = b.get("raw", {}), b["portway"]
        tgt, met = _verdict(summary, "b")
        lines.append(
            f"| (b) server RSS per idle conn, KB ({p.get('conns', 0):,.0f} conns) "
            f"| {r.get('kb_per_conn', 0):.2f} | {p['kb_per_conn']:.2f} | {b.get('ratio', 0):.2f}x | "
            f"| {tgt} | {met} | VmRSS raw {r.get('rss0_kb', 0) / 1024:.1f} -> "
            f"{r.get('rssN_kb', 0) / 1024:.1f} MB, Portway {p.get('rss0_kb', 0) / 1024:.1f} -> "
            f"{p.get('rssN_kb', 0) / 1024:.1f} MB |"
        )
        lines.append(
            f"| (b) connections opened per s, with handshake | {r.get('open_rate', 0):,.0f} "
            f"| {p.get('open_rate', 0):,.0f} | | | | | {meta['client_procs']} client processes |"
        )
    c = summary.get("c")
    if c and "raw" in c and "portway" in c:
        r, p = c["raw"], c["portway"]
        lines.append(
            f"| (c) `@connections` POST/s (raw: `POST /send/{{i}}`) | {r['rps']:,.0f} | {p['rps']:,.0f} "
            f"| {c['ratio']:.2f}x | {c.get('cpu_cost_ratio', 0):.2f}x | (none) | "
            f"| received / 200s: {r.get('delivered_fraction', 0):.4f} vs "
            f"{p.get('delivered_fraction', 0):.4f} "
            f"(> 1: posts still in flight when wrk stopped); non-2xx {r['non_2xx']} vs {p['non_2xx']}; "
            f"server CPU per POST {r.get('server_us_per_post', 0):.1f} vs "
            f"{p.get('server_us_per_post', 0):.1f} us; p50 {r.get('p50_ms', 0):.2f} vs "
            f"{p.get('p50_ms', 0):.2f} ms |"
        )
    d = summary.get("d")
    if d and "raw" in d and "portway" in d:
        r, p = d["raw"], d["portway"]
        tgt, met = _verdict(summary, "d")
        lines.append(
            f"| (d) broadcast deliveries/s to {p.get('conns', 0):,.0f} conns (raw: `send_str` loop) "
            f"| {r['deliveries_per_s']:,.0f} | {p['deliveries_per_s']:,.0f} | **{d['ratio']:.2f}x** "
            f"| {d.get('cpu_cost_ratio', 0):.2f}x | {tgt} | {met} | {p['samples']} broadcasts each; per "
            f"broadcast {', '.join(f'{x:.2f}' for x in d['ratio_per_sample'])}; server CPU per delivery "
            f"{r.get('server_us_per_delivery', 0):.1f} vs {p.get('server_us_per_delivery', 0):.1f} us |"
        )
        lines.append(
            f"| (d) first / last receipt after the POST, ms (POST answered after, ms) "
            f"| {r.get('first_ms', 0):.1f} / {r.get('last_ms', 0):.1f} ({r.get('post_ms', 0):.1f}) "
            f"| {p.get('first_ms', 0):.1f} / {p.get('last_ms', 0):.1f} ({p.get('post_ms', 0):.1f}) | | | | "
            f"| least fraction received: {r.get('received_fraction_min', 0):.4f} vs "
            f"{p.get('received_fraction_min', 0):.4f} |"
        )
    noise = {
        f"({key}) {server}": entry.get("noise_pct_max", 0.0)
        for key, fig in summary.items()
        if key in ("a", "c", "d")
        for server, entry in fig.items()
        if isinstance(entry, dict)
    }
    worst = max(noise.values(), default=0.0)
    lines += [
        "",
        "CPU used by other tenants during a measurement (max, % of a core): "
        + ", ".join(f"{k} {v:.0f}" for k, v in noise.items())
        + (
            ". **Noisy**: throughput ratios are unreliable; the per-operation CPU ratios are steadier."
            if worst > 20
            else "."
        ),
    ]
    return "\n".join(lines) + "\n"


# -- main ----------------------------------------------------------------------------------------------


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


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {"python": platform.python_version()}
    for mod in ("aiohttp", "uvloop", "orjson"):
        with contextlib.suppress(Exception):
            versions[mod] = __import__(mod).__version__
    wrk = shutil.which("wrk")
    if wrk:
        proc = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
        first = (proc.stdout or proc.stderr).splitlines()
        versions["wrk"] = first[0] if first else "?"
    import resource

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "versions": versions,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 run, 3 s windows, 1 s warm-up (~1 min)")
    parser.add_argument("--runs", type=int, help="runs (default 3; fresh servers each run)")
    parser.add_argument("--figures", default="a,b,c,d", help="subset, e.g. a,d ((d) implies (b)'s conns)")
    parser.add_argument("--echo-duration", type=float, help="(a) measured seconds (default 10)")
    parser.add_argument("--echo-conns", type=int, default=100)
    parser.add_argument("--impl", choices=("raw", "aiohttp"), default="raw", help="(a) client implementation")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before (a) and (c) (default 2)")
    parser.add_argument("--idle-conns", type=int, default=10_000, help="(b)/(d) connections")
    parser.add_argument("--client-procs", type=int, default=2, help="(b)/(d) client processes")
    parser.add_argument("--settle", type=float, default=2.0, help="(b) seconds between open and RSS read")
    parser.add_argument("--broadcasts", type=int, default=5, help="(d) broadcasts per run")
    parser.add_argument("--broadcast-timeout", type=float, default=10.0)
    parser.add_argument("--post-conns", type=int, default=1000, help="(c) connections posted to")
    parser.add_argument("--post-http-conns", type=int, default=64, help="(c) wrk connections")
    parser.add_argument("--post-duration", type=float, help="(c) measured seconds (default 5)")
    parser.add_argument("--max-noise", type=float, default=20.0, help="redo above this (%% of a core)")
    parser.add_argument(
        "--redo", type=int, default=0, help="redos of a noisy (a)/(c) measurement; the least noisy is kept"
    )
    parser.add_argument("--quiet-timeout", type=float, help="max seconds to wait for quiet (default 5)")
    parser.add_argument(
        "--portway-launcher", type=Path, default=SERVERS / "portway_ws.py", help="script that serves Portway"
    )
    parser.add_argument("--portway-arg", action="append", default=[], help="extra argument for the launcher")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.echo_duration = args.echo_duration or (3.0 if args.quick else 10.0)
    args.post_duration = args.post_duration or (3.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.quiet_timeout = (
        args.quiet_timeout if args.quiet_timeout is not None else (3.0 if args.quick else 5.0)
    )
    args.figures = {f.strip() for f in args.figures.split(",") if f.strip()}
    if not args.figures <= {"a", "b", "c", "d"}:
        parser.error("--figures takes a subset of a,b,c,d")
    if "d" in args.figures:
        args.figures.add("b")  # the broadcast goes to (b)'s idle connections
    if not (1 <= args.runs <= 20 and 1 <= args.echo_duration <= 120 and 1 <= args.post_duration <= 120):
        parser.error("bounds: --runs 1..20, --echo-duration and --post-duration 1..120 s")
    if not (0 <= args.warmup <= 30 and 1 <= args.broadcasts <= 50 and 1 <= args.client_procs <= 8):
        parser.error("bounds: --warmup 0..30, --broadcasts 1..50, --client-procs 1..8")
    per_proc = -(-args.idle_conns // args.client_procs)
    if not 1 <= args.idle_conns <= FD_LIMIT - 200 or per_proc > FD_LIMIT - 100:
        parser.error(f"--idle-conns must fit the server's fd limit ({FD_LIMIT}) with ~200 fds to spare")
    if not (
        1 <= args.echo_conns <= 5000 and 1 <= args.post_conns <= 10_000 and 1 <= args.post_http_conns <= 1000
    ):
        parser.error("bounds: --echo-conns 1..5000, --post-conns 1..10000, --post-http-conns 1..1000")
    if "c" in args.figures and not shutil.which("wrk"):
        parser.error("(c) needs wrk")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if not shutil.which("taskset"):
        print("taskset is needed for the pinning", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {LOAD_CORE})  # this script is load-side too
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.out / f"ws-logs-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    children = Children(run_dir)
    bench = Bench(args, children, run_dir)
    meta: dict[str, Any] = {
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "argv": ["bench/bench_ws.py", *(argv if argv is not None else sys.argv[1:])],
        "runs": args.runs,
        "figures": sorted(args.figures),
        "echo_conns": args.echo_conns,
        "echo_duration_s": args.echo_duration,
        "impl": args.impl,
        "warmup_s": args.warmup,
        "idle_conns": args.idle_conns,
        "client_procs": args.client_procs,
        "broadcasts": args.broadcasts,
        "post_conns": args.post_conns,
        "post_http_conns": args.post_http_conns,
        "post_duration_s": args.post_duration,
        "message_bytes": len(MESSAGE),
        "portway_launcher": " ".join([str(args.portway_launcher), *args.portway_arg]),
        "layout": f"A: servers on core {SERVER_CORE}; clients, wrk and this script on core {LOAD_CORE}",
        "git": git_info(),
        "machine": machine_info(),
    }
    started = time.monotonic()
    try:
        for run in range(1, args.runs + 1):
            servers = bench.start_servers()
            print(
                f"run {run}/{args.runs}: raw pid {servers['raw'].child.pid} port {servers['raw'].port}, "
                f"Portway pid {servers['portway'].child.pid} port {servers['portway'].port}",
                flush=True,
            )
            for server in servers.values():
                bench.warm_up(server)
            time.sleep(1.0)
            # Alternate which server goes first, so slow drifts in other tenants' load even out.
            order = SERVER_NAMES if run % 2 else SERVER_NAMES[::-1]
            if "b" in args.figures:
                for name in order:
                    bench.idle_and_broadcast(run, servers[name])
            if "a" in args.figures:
                for name in order:
                    bench.echo(run, servers[name])
            if "c" in args.figures:
                for name in order:
                    bench.posts(run, servers[name])
            for server in servers.values():
                if server.child.popen.poll() is not None:
                    raise RuntimeError(f"{server.name} died during the run:\n{tail(server.child.log_path)}")
                children.stop(server.child)
    except KeyboardInterrupt:
        print("interrupted: stopping every child", file=sys.stderr)
        return 130
    finally:
        children.stop_all()
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    summary = summarize(bench.results)
    table = markdown(summary, meta)
    json_path = args.out / f"ws-results-{stamp}.json"
    md_path = args.out / f"ws-results-{stamp}.md"
    json_path.write_text(
        json.dumps({"meta": meta, "summary": summary, "samples": bench.results}, indent=2) + "\n"
    )
    md_path.write_text(table)
    print()
    print(table)
    print(f"wrote {json_path.relative_to(ROOT)} and {md_path.relative_to(ROOT)} ({meta['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

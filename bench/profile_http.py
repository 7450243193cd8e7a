"""Profile one Portway route under load: where does a request's CPU go?

    .venv/bin/python bench/profile_http.py [--path /dev/proxy/hello] [--duration 10] [--profiler cprofile]
    .venv/bin/python bench/profile_http.py --server minimal_proxy --path /hello   # the baseline

Starts the backend (core 1) and Portway (``servers/portway_server.py``, core 0), loads ``--path``
with ``taskset -c 1 wrk -t1 -c64`` (or ``loadgen.py``) and samples Portway while it runs:

* ``py-spy`` (``pip install py-spy``; not a project dependency): ``py-spy record --nonblocking
  --function --format raw`` pinned to core 1, so sampling costs the gateway's core little. Native
  frames are not shown; time in uvloop/aiohttp C code is charged to the Python frame that called it.
* ``cprofile``: the launcher's ``--cprofile`` flag (deterministic, slows the server roughly 2x, so
  the per-request microseconds are inflated; the ranking is what matters).

Prints the top functions by self and by inclusive share of samples, converted to microseconds per
request using the server-side request rate measured in the same window, and writes the raw profile
under ``bench/out/``.
"""

from __future__ import annotations

import argparse
import collections
import pstats
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import (
    HOST,
    LOAD_CORE,
    OUT,
    SERVER_CORE,
    SERVERS,
    Children,
    CpuWindow,
    LoadTool,
    fetch,
    free_port,
    wait_ready,
)


def summarize_collapsed(path: Path, requests: int, top: int, us_per_req: float = 0.0) -> str:
    """Self and inclusive sample shares of a py-spy ``--format raw`` (collapsed stacks) file."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            incl_counts[frame] += count
    return _table(self_counts, incl_counts, total, requests, top, "samples", us_per_req)


def summarize_pstats(path: Path, requests: int, top: int, us_per_req: float = 0.0) -> str:
    stats = pstats.Stats(str(path))
    raw = stats.stats  # type: ignore[attr-defined]
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    for (filename, line, func), (_cc, _nc, tt, ct, _callers) in raw.items():
        name = f"{func} ({_short_file(filename)}:{line})"
        self_counts[name] += int(tt * 1e6)
        incl_counts[name] += int(ct * 1e6)
    total = sum(self_counts.values())
    return _table(self_counts, incl_counts, total, requests, top, "us (cProfile)", us_per_req)


def _short_file(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _short(frame: str) -> str:
    # py-spy frames look like "function (path/to/file.py:123)".
    name, _, where = frame.partition(" (")
    return f"{name} ({_short_file(where.rstrip(')'))})" if where else frame


def _table(
    self_counts: collections.Counter[str],
    incl_counts: collections.Counter[str],
    total: int,
    requests: int,
    top: int,
    unit: str,
    us_per_req: float,
) -> str:
    if not total:
        return "no samples\n"
    lines = [f"total {total} {unit}; {requests} requests in the window", ""]
    if us_per_req:
        lines[-1:] = [f"(us/req = share x {us_per_req:.1f} us of server CPU per request in this window)", ""]
    for title, counter in (("self", self_counts), ("inclusive", incl_counts)):
        lines.append(f"top {top} by {title} share:")
        for name, count in counter.most_common(top):
            share = count / total
            cost = f"{share * us_per_req:6.1f} us  " if us_per_req else ""
            lines.append(f"  {100 * share:5.1f}%  {cost}{name}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", default="/dev/proxy/hello", help="path to load")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--server",
        choices=("portway", "minimal_proxy", "minimal_server"),
        default="portway",
        help="what to profile",
    )
    parser.add_argument("--profiler", choices=("py-spy", "cprofile", "none"), default="py-spy")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="py-spy pauses the server per sample: consistent stacks, slower",
    )
    parser.add_argument("--native", action="store_true", help="py-spy: include C frames (uvloop, OpenSSL)")
    parser.add_argument("--portway-launcher", type=Path, default=SERVERS / "portway_server.py")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 120:
        parser.error("--duration must be in 1..120")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if args.profiler == "cprofile" and args.server != "portway":
        parser.error("--profiler cprofile needs --server portway (the launcher's --cprofile flag)")
    if args.profiler == "py-spy" and not Path(py_spy).exists():
        parser.error("py-spy not found: pip install py-spy (or use --profiler cprofile)")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT.mkdir(parents=True, exist_ok=True)
    children = Children(OUT / f"logs-profile-{stamp}")
    tool = LoadTool("wrk" if shutil.which("wrk") else "loadgen.py", args.connections)
    py = sys.executable
    backend_port, portway_port = free_port(), free_port()
    pstats_path = OUT / f"profile-{stamp}.pstats"
    raw_path = OUT / f"profile-{stamp}.collapsed"
    extra = ["--cprofile", str(pstats_path)] if args.profiler == "cprofile" else []
    try:
        backend = children.start(
            "backend", [py, str(SERVERS / "backend.py"), "--port", str(backend_port)], LOAD_CORE
        )
        backend_url = f"http://{HOST}:{backend_port}"
        if args.server == "portway":
            argv_ = [
                py,
                str(args.portway_launcher),
                "--port",
                str(portway_port),
                "--backend",
                backend_url,
                *extra,
            ]
        elif args.server == "minimal_proxy":
            argv_ = [
                py,
                str(SERVERS / "minimal_proxy.py"),
                "--port",
                str(portway_port),
                "--backend",
                backend_url,
            ]
        else:
            argv_ = [py, str(SERVERS / "minimal_server.py"), "--port", str(portway_port)]
        portway = children.start(args.server, argv_, SERVER_CORE)
        wait_ready(backend, f"http://{HOST}:{backend_port}/")
        wait_ready(portway, f"http://{HOST}:{portway_port}/")
        url = f"http://{HOST}:{portway_port}{args.path}"
        status, body = fetch(url)
        print(f"{url}: {status} {body[:80]!r}")
        tool.run(url, 2)  # warm-up
        sampler = None
        if args.profiler == "py-spy":
            sampler = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    str(LOAD_CORE),
                    py_spy,
                    "record",
                    *([] if args.blocking else ["--nonblocking"]),
                    *(["--native"] if args.native else []),
                    "--function",
                    "--format",
                    "raw",
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(args.duration),
                    "--output",
                    str(raw_path),
                    "--pid",
                    str(portway.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(0.5)  # let py-spy attach before the measured load starts
        window = CpuWindow({"server": portway.pid, "backend": backend.pid})
        window.start()
        result, command = tool.run(url, args.duration)
        cpu = window.stop()
        if sampler is not None:
            _, err = sampler.communicate(timeout=args.duration + 30)
            if sampler.returncode != 0:
                print(f"py-spy failed: {err.decode(errors='replace')}", file=sys.stderr)
                return 1
        requests = int(result.get("requests") or result["rps"] * args.duration)
        print(command)
        print(f"{result['rps']:,.0f} req/s, p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms")
        print(f"cpu: {cpu}")
        us_per_req = cpu["server"] / 100 * 1e6 / result["rps"] if result["rps"] else 0.0
        print(f"server CPU per request: {us_per_req:.1f} us\n")
    finally:
        children.stop_all()
    if args.profiler == "none":
        return 0
    if args.profiler == "py-spy":
        print(summarize_collapsed(raw_path, requests, args.top, us_per_req))
        print(f"raw profile: {raw_path}")
    else:
        print(summarize_pstats(pstats_path, requests, args.top))
        print(f"pstats: {pstats_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

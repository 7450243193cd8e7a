"""Mapping templates and request validation cost (issue 15): a route's server CPU per request with
and without a template / a validator, measured in one run.

    .venv/bin/python bench/bench_transform.py [--rounds 3] [--duration 5] [-c 16] [--number 20000]

Part 1 (in-process, ``timeit``, best of 5): the request template render, the response transform
and one validation (parameters + model) on the benchmark's body.

Part 2 (end to end): ``bench/servers/backend.py`` on core 1, ``bench/servers/portway_transform.py``
pinned to core 0, ``bench/loadgen.py`` on core 1. Pairs loaded in alternation, ``--rounds``
times each: ``http`` vs ``http-tpl`` (HTTP non-proxy integration without / with request template,
query mapping, response template and header mapping) and ``open`` vs ``valid`` (a MOCK without /
with a validator checking two parameters and a draft-4 model). Every request carries the same
headers, query and body. The server's CPU time (``/proc/<pid>/stat``) is divided by the requests
it completed; the overhead is (with - without) / without.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import timeit
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "servers"))

from bench_sigv4 import cpu_seconds, free_port, pinned  # noqa: E402
from portway_transform import BODY, transform_config  # noqa: E402

from server.events import RequestInfo  # noqa: E402
from server.messages import HttpRequest, HttpResponse  # noqa: E402
from server.transform.request import RequestTransform  # noqa: E402
from server.transform.response import ResponseTransform  # noqa: E402
from server.validation import RouteValidator, model_registry  # noqa: E402

HEADERS = [("Content-Type", "application/json"), ("X-Trace", "t-1")]
QUERY = "kind=dog"


def _info() -> RequestInfo:
    request = HttpRequest(
        "POST", "/dev/http-tpl", QUERY, tuple(HEADERS), BODY.encode(), "127.0.0.1", "127.0.0.1:8091"
    )
    return RequestInfo(
        request=request,
        api_id="tplbench01",
        account_id="123456789012",
        stage="dev",
        stage_prefix="/dev",
        path="/http-tpl",
        resource="/http-tpl",
        route_key="POST /http-tpl",
        path_parameters={},
        stage_variables={},
        request_id="r",
        extended_request_id="e",
        now_ms=0,
    )


def per_call_us(fn: Any, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def in_process(number: int) -> dict[str, float]:
    config = transform_config("http://127.0.0.1:1")
    routes = {route.path: route for route in config.apis[0].routes}
    templated = routes["/http-tpl"].integration
    request_side = RequestTransform(templated)
    response_side = ResponseTransform(templated.responses)
    validation = routes["/valid"].validation
    assert validation is not None
    validator = RouteValidator(validation, model_registry({}), {})
    info = _info()
    backend = HttpResponse(
        200, [("Content-Type", "application/json")], b'{"message":"hello","ok":true,"n":42}'
    )
    return {
        "request_transform_us": per_call_us(lambda: request_side.apply(info), number),
        "response_transform_us": per_call_us(lambda: response_side.apply(info, backend), number),
        "validation_us": per_call_us(lambda: validator.check(info.request, {}), number),
    }


def load(url: str, connections: int, duration: float) -> dict[str, Any]:
    command = [*pinned(1), sys.executable, str(ROOT / "bench" / "loadgen.py"), url, "-c", str(connections)]
    command += ["-d", str(duration), "--json", "-X", "POST", "--body", BODY]
    for name, value in HEADERS:
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def end_to_end(rounds: int, duration: float, connections: int) -> dict[str, Any]:
    backend_port, port = free_port(), free_port()
    backend = subprocess.Popen(
        [
            *pinned(1),
            sys.executable,
            str(ROOT / "bench" / "servers" / "backend.py"),
            "--port",
            str(backend_port),
        ],
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [
            *pinned(0),
            sys.executable,
            str(ROOT / "bench" / "servers" / "portway_transform.py"),
            *("--port", str(port), "--backend", f"http://127.0.0.1:{backend_port}"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "listening"
        base = f"http://127.0.0.1:{port}/dev"
        deadline = time.monotonic() + 30
        for path in ("http", "http-tpl", "open", "valid"):
            while True:
                request = urllib.request.Request(
                    f"{base}/{path}?{QUERY}", data=BODY.encode(), headers=dict(HEADERS), method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=5) as r:
                        assert r.status == 200, (path, r.status)
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        targets = ("http", "http-tpl", "open", "valid")
        figures: dict[str, list[float]] = {name: [] for name in targets}
        rates: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(rounds):
            for name in targets:
                before = cpu_seconds(server.pid)
                result = load(f"{base}/{name}?{QUERY}", connections, duration)
                spent = cpu_seconds(server.pid) - before
                assert result["non_2xx"] == 0 and result["errors"] == 0, (name, result)
                figures[name].append(spent / max(result["requests"], 1) * 1e6)
                rates[name].append(result["rps"])
        cpu = {k: statistics.median(v) for k, v in figures.items()}
        return {
            "server_cpu_us_per_request": cpu,
            "overhead_template": cpu["http-tpl"] / cpu["http"] - 1,
            "overhead_validation": cpu["valid"] / cpu["open"] - 1,
            "requests_per_second": {k: statistics.median(v) for k, v in rates.items()},
            "runs": {"cpu_us": figures, "rps": rates},
        }
    finally:
        for child in (server, backend):
            child.terminate()
            child.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("-c", "--connections", type=int, default=16)
    args = parser.parse_args(argv)
    report = {
        "in_process": in_process(args.number),
        "end_to_end": end_to_end(args.rounds, args.duration, args.connections),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

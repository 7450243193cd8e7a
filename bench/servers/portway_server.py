"""Portway under benchmark: a gateway definition built in Python, served by ``create_app`` on uvloop.

    python bench/servers/portway_server.py --port 8084 --backend http://127.0.0.1:8081 [--cprofile FILE]

One REST API (id ``benchapi01``) on stage ``dev`` with three routes:

* ``GET /dev/py``      -> PYTHON ``bench_handler.handler`` (``bench/handlers``), in-process isolation;
* ``GET /dev/pyproc``  -> the same handler with process isolation (``--workers`` worker processes);
* ``ANY /dev/proxy/{proxy+}`` -> HTTP_PROXY to ``{backend}/{proxy}``.

The config is built from :mod:`server.config.model` rather than loaded from YAML, so the benchmark
does not depend on the loader. Serving mirrors ``server/cli.py`` (``AppRunner`` without access log,
``TCPSite`` with backlog 1024, ``uvloop.run``).

``--cprofile FILE`` profiles the whole process life with cProfile and writes a ``pstats`` file on
SIGTERM/SIGINT (read it with ``python -m pstats FILE``); it slows the server down, so use it to
find where time goes, not to measure throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal
import sys
from pathlib import Path

import uvloop
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the repository's packages
    sys.path.insert(0, str(ROOT))

from server.app import create_app  # noqa: E402
from server.config.model import (  # noqa: E402
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    Isolation,
    RouteConfig,
    StageConfig,
)

HANDLERS_DIR = ROOT / "bench" / "handlers"


def bench_config(backend: str, *, workers: int = 1) -> GatewayConfig:
    """The benchmark's gateway definition (see the module docstring)."""

    def python(isolation: Isolation) -> IntegrationConfig:
        return IntegrationConfig(
            type=IntegrationType.PYTHON,
            handler="bench_handler.handler",
            code_dir=HANDLERS_DIR,
            function_name=f"bench-{isolation.value}",
            isolation=isolation,
            workers=workers,
        )

    routes = (
        RouteConfig("GET", "/py", python(Isolation.INPROCESS)),
        RouteConfig("GET", "/pyproc", python(Isolation.PROCESS)),
        RouteConfig(
            "ANY",
            "/proxy/{proxy+}",
            IntegrationConfig(type=IntegrationType.HTTP_PROXY, uri=backend.rstrip("/") + "/{proxy}"),
        ),
    )
    api = ApiConfig(
        name="bench", id="benchapi01", kind=ApiKind.REST, stages=(StageConfig("dev"),), routes=routes
    )
    return GatewayConfig(apis=(api,))


async def serve(host: str, port: int, config: GatewayConfig) -> None:
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    print(f"Portway (bench) listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Portway with the benchmark's routes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8084)
    parser.add_argument("--backend", default="http://127.0.0.1:8081", help="HTTP_PROXY upstream base URL")
    parser.add_argument("--workers", type=int, default=1, help="worker processes for /dev/pyproc")
    parser.add_argument("--cprofile", type=Path, help="write a cProfile pstats file here on exit")
    args = parser.parse_args(argv)
    config = bench_config(args.backend, workers=args.workers)
    profiler = cProfile.Profile() if args.cprofile else None
    if profiler is not None:
        profiler.enable()
    try:
        uvloop.run(serve(args.host, args.port, config))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.cprofile))
            print(f"cProfile stats written to {args.cprofile}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Portway under the WebSocket benchmark: a WEBSOCKET API built in Python, served by ``create_app``.

    python bench/servers/portway_ws.py --port 8091 [--cprofile FILE]

One WebSocket API (id ``wsbench01``) on stage ``dev``, served at ``ws://HOST:PORT/dev``, with a
single route: ``$default`` with a route response, integrated with the in-process ``async def``
handler ``ws_bench_handler.echo`` (``bench/handlers``), which returns the message body. Every other
setting is the default (AWS's limits, 30 s pings, 10 min idle timeout, embedded store), so the
``@connections`` API is at ``/dev/@connections/{id}`` and the stage broadcast at ``/dev/@broadcast``.

The config is built from :mod:`server.config.model` rather than loaded from YAML, so the benchmark
does not depend on the loader. Serving mirrors ``server/cli.py`` (``AppRunner`` without access log,
``TCPSite`` with backlog 1024, ``uvloop.run``). Memory is read from outside (``/proc/PID/status``).

``--cprofile FILE`` profiles the whole process life and writes a ``pstats`` file on SIGTERM/SIGINT;
it slows the server down, so use it to find where time goes, not to measure.
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

from routes.integrations.python_inprocess import shutdown_handler_executor  # noqa: E402
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
    WebSocketSettings,
)

HANDLERS_DIR = ROOT / "bench" / "handlers"
API_ID = "wsbench01"
STAGE = "dev"


def ws_bench_config(*, control_frames: bool = True) -> GatewayConfig:
    """The benchmark's gateway definition (see the module docstring). ``control_frames`` False
    switches the per-connection ping/pong budget off (``controlFrameThrottle: null``), as before
    issue 11: bench/bench_ping_flood.py measures both."""
    echo = IntegrationConfig(
        type=IntegrationType.PYTHON,
        handler="ws_bench_handler.echo",
        code_dir=HANDLERS_DIR,
        function_name="ws-bench-echo",
        isolation=Isolation.INPROCESS,
    )
    api = ApiConfig(
        name="wsbench",
        id=API_ID,
        kind=ApiKind.WEBSOCKET,
        stages=(StageConfig(STAGE),),
        routes=(RouteConfig(method="", path="$default", integration=echo, route_response=True),),
        websocket=WebSocketSettings() if control_frames else WebSocketSettings(control_frame_throttle=None),
    )
    # Throttling off (no account bucket): this benchmark measures the WebSocket path itself, as it
    # did before per-message throttling existed; bench/servers/portway_ws_throttle.py measures it on.
    return GatewayConfig(apis=(api,), account_throttle=None)


async def serve(host: str, port: int, config: GatewayConfig, redis_url: str | None = None) -> None:
    app = create_app(config, redis_url=redis_url)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    print(f"Portway (WebSocket bench) listening on ws://{host}:{port}/{STAGE}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        shutdown_handler_executor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Portway with the WebSocket benchmark's API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--cprofile", type=Path, help="write a cProfile pstats file here on exit")
    parser.add_argument(
        "--no-control-budget", action="store_true", help="controlFrameThrottle: null (no ping/pong budget)"
    )
    args = parser.parse_args(argv)
    config = ws_bench_config(control_frames=not args.no_control_budget)
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

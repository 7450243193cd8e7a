"""Portway under benchmark: a gateway definition built in Python, served by ``create_app`` on uvloop.

    python bench/servers/portway_server.py --port 8084 --backend http://127.0.0.1:8081 [--cprofile FILE]
    python bench/servers/portway_server.py ... --redis-url redis://127.0.0.1:6390 --throttle-bench

One REST API (id ``benchapi01``) on stage ``dev`` with three routes:

* ``GET /dev/py``      -> PYTHON ``bench_handler.handler`` (``bench/handlers``), in-process isolation;
* ``GET /dev/pyproc``  -> the same handler with process isolation (``--workers`` worker processes);
* ``ANY /dev/proxy/{proxy+}`` -> HTTP_PROXY to ``{backend}/{proxy}``.

``--redis-url URL`` keeps the store (throttling state, API keys) in that Redis instead of the
embedded store.

``--throttle-bench`` (issue #5's benchmark, ``bench/bench_throttle.py``) changes the definition
(no ``/dev/py`` routes, so no handler worker process):

* the account bucket is off (``account_throttle=None``) and the stage has no default throttle, so
  ``ANY /dev/proxy/{proxy+}`` is the route with throttling off: no store call at all;
* ``ANY /dev/keyed/{proxy+}`` -> the same HTTP_PROXY backend, with ``apiKeyRequired``, a stage
  ``methodThrottles`` entry, and usage plan ``benchplan`` (stage ``dev``) with a plan throttle and
  a daily quota; API key ``bench`` with the value of ``--api-key`` is in that plan. Every limit is
  far above what one process can reach (rate and burst 1e6, quota 1e9 a day), so nothing is
  refused.

A request to the keyed route checks the key in the node's copy of the registry (SHA-256 of the
value, constant-time compare; no store call), then makes one store call: one ``EVALSHA`` of
``ADMIT_LUA`` (pipelined with the other requests of the same event-loop iteration) with four
KEYS: the plan bucket ``{tb}:plan:benchplan:<key id>``, the stage method bucket
``{tb}:method:benchapi01/dev/ANY /keyed/{proxy+}``, the quota counter and the usage counter of the
day. Inside Redis: one ``MGET`` of the four keys, ``INCRBY`` on both counters and a ``SET .. PX``
of each bucket's 16-byte state.

``--cache-bench`` (issue 16's stage cache benchmark, ``bench/bench_cache.py``): the HTTP_PROXY
route alone, on stage ``dev`` (no cache) and stage ``cached`` (stage cache on), see
:func:`cache_config`; with ``--redis-url`` the entries are kept in Redis.

``--jwt-bench JWKS_FILE`` (issue #9's JWT benchmark, ``bench/bench_jwt.py``): one HTTP API (no
stage segment) with two HTTP_PROXY routes to the same backend, ``ANY /open/{proxy+}`` (no auth)
and ``ANY /jwt/{proxy+}`` (a JWT authorizer: issuer ``--jwt-issuer``, audience ``bench``). The
JWKS in ``JWKS_FILE`` is served by this process on another loopback port (fetched once, on the
first token).

``--auth-bench`` (issue #9's benchmark, ``bench/bench_auth.py``): the account bucket is off and
there are two HTTP_PROXY routes to the same backend: ``ANY /dev/proxy/{proxy+}`` without auth and
``ANY /dev/authed/{proxy+}`` with a TOKEN Lambda authorizer (``bench_authorizer.authorize``, in
process, result cached for 3600 s in the store: one store ``GET`` per request, the cached policy
evaluated against the request's method ARN).

The config is built from :mod:`server.config.model` rather than loaded from YAML, so the benchmark
does not depend on the loader. Serving mirrors ``server/cli.py`` (``AppRunner`` without access log,
``GatewayRunner``, ``TCPSite`` with backlog 1024, ``uvloop.run``).

``--cprofile FILE`` profiles the whole process life with cProfile and writes a ``pstats`` file on
SIGTERM/SIGINT (read it with ``python -m pstats FILE``); it slows the server down, so use it to
find where time goes, not to measure throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import signal
import sys
from pathlib import Path
from types import MappingProxyType

import uvloop
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the repository's packages
    sys.path.insert(0, str(ROOT))

from server.app import create_app  # noqa: E402
from server.config.model import (  # noqa: E402
    ApiConfig,
    ApiKeyConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    CacheSettings,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    Isolation,
    PlanStage,
    QuotaSettings,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
    UsagePlanConfig,
)
from server.http_server import GatewayRunner  # noqa: E402

HANDLERS_DIR = ROOT / "bench" / "handlers"
BENCH_API_KEY = "PortwayBench0123456789abcdefKey"  # default --api-key (20-128 letters and digits)
BENCH_PLAN_ID = "benchplan"
KEYED_ROUTE = "ANY /keyed/{proxy+}"
# Far above what one process can reach: nothing is refused during a benchmark.
HIGH_LIMIT = ThrottleSettings(rate=1e6, burst=1_000_000)
HIGH_QUOTA = QuotaSettings(limit=1_000_000_000, period="DAY")


def auth_bench_config(backend: str) -> GatewayConfig:
    """``--auth-bench``: the same HTTP_PROXY route without and with a cached Lambda authorizer."""
    proxy = IntegrationConfig(type=IntegrationType.HTTP_PROXY, uri=backend.rstrip("/") + "/{proxy}")
    authorizer = AuthorizerConfig(
        name="bench",
        type=AuthorizerType.TOKEN,
        function=IntegrationConfig(
            type=IntegrationType.PYTHON,
            handler="bench_authorizer.authorize",
            code_dir=HANDLERS_DIR,
            function_name="bench-authorizer",
            isolation=Isolation.INPROCESS,
        ),
        identity_sources=("method.request.header.Authorization",),
        ttl_s=3600,
    )
    api = ApiConfig(
        name="bench",
        id="benchapi01",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"),),
        routes=(
            RouteConfig("ANY", "/proxy/{proxy+}", proxy),
            RouteConfig("ANY", "/authed/{proxy+}", proxy, authorizer=authorizer),
        ),
    )
    return GatewayConfig(apis=(api,), account_throttle=None)


def bench_config(
    backend: str, *, workers: int = 1, throttle_bench: bool = False, api_key: str = BENCH_API_KEY
) -> GatewayConfig:
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

    proxy = IntegrationConfig(type=IntegrationType.HTTP_PROXY, uri=backend.rstrip("/") + "/{proxy}")
    if not throttle_bench:
        routes = (
            RouteConfig("GET", "/py", python(Isolation.INPROCESS)),
            RouteConfig("GET", "/pyproc", python(Isolation.PROCESS)),
            RouteConfig("ANY", "/proxy/{proxy+}", proxy),
        )
        api = ApiConfig(
            name="bench", id="benchapi01", kind=ApiKind.REST, stages=(StageConfig("dev"),), routes=routes
        )
        return GatewayConfig(apis=(api,))
    # Only the two proxy routes: no handler worker process sharing the gateway's core.
    keyed = RouteConfig("ANY", "/keyed/{proxy+}", proxy, api_key_required=True)
    assert keyed.route_key == KEYED_ROUTE
    stage = StageConfig("dev", method_throttles=MappingProxyType({KEYED_ROUTE: HIGH_LIMIT}))
    api = ApiConfig(
        name="bench",
        id="benchapi01",
        kind=ApiKind.REST,
        stages=(stage,),
        routes=(RouteConfig("ANY", "/proxy/{proxy+}", proxy), keyed),
    )
    plan = UsagePlanConfig(
        id=BENCH_PLAN_ID,
        name="bench",
        stages=(PlanStage(api.id, stage.name),),
        throttle=HIGH_LIMIT,
        quota=HIGH_QUOTA,
    )
    return GatewayConfig(
        apis=(api,),
        account_throttle=None,
        usage_plans=(plan,),
        api_keys=(ApiKeyConfig("bench", api_key, plans=(plan.id,)),),
    )


def cache_config(backend: str, *, ttl_s: int = 3600) -> GatewayConfig:
    """``--cache-bench`` (issue 16): one HTTP_PROXY route on two stages of one REST API, ``dev``
    without a cache and ``cached`` with the stage cache on (GET requests of the ``ANY`` route
    cached, ``ttl_s``); the account bucket off, so neither pays a throttle store call."""
    proxy = IntegrationConfig(type=IntegrationType.HTTP_PROXY, uri=backend.rstrip("/") + "/{proxy}")
    api = ApiConfig(
        name="bench",
        id="benchapi01",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"), StageConfig("cached", cache=CacheSettings(ttl_s=ttl_s))),
        routes=(RouteConfig("ANY", "/proxy/{proxy+}", proxy),),
    )
    return GatewayConfig(apis=(api,), account_throttle=None)


JWT_AUDIENCE = "bench"


def jwt_config(backend: str, issuer: str, jwks_uri: str) -> GatewayConfig:
    """``--jwt-bench``: the same HTTP_PROXY route with and without a JWT authorizer."""
    proxy = IntegrationConfig(type=IntegrationType.HTTP_PROXY, uri=backend.rstrip("/") + "/{proxy}")
    auth = AuthorizerConfig(
        "bench", AuthorizerType.JWT, issuer=issuer, audiences=(JWT_AUDIENCE,), jwks_uri=jwks_uri
    )
    api = ApiConfig(
        name="jwtbench",
        id="jwtbench01",
        kind=ApiKind.HTTP,
        stages=(StageConfig("$default"),),
        routes=(
            RouteConfig("ANY", "/open/{proxy+}", proxy),
            RouteConfig("ANY", "/jwt/{proxy+}", proxy, authorizer=auth),
        ),
    )
    return GatewayConfig(apis=(api,))


async def serve_jwks(host: str, body: bytes) -> tuple[web.AppRunner, str]:
    """The JWKS of ``--jwt-bench`` on a free loopback port: (runner, URL)."""

    async def jwks(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://{host}:{port}/jwks"


async def serve(
    host: str,
    port: int,
    config: GatewayConfig | None,
    redis_url: str | None = None,
    jwt: tuple[str, str, bytes] | None = None,
) -> None:
    """``jwt``: (backend, issuer, JWKS document) of ``--jwt-bench``, whose config needs the JWKS URL."""
    jwks_runner: web.AppRunner | None = None
    if jwt is not None:
        backend, issuer, jwks = jwt
        jwks_runner, jwks_uri = await serve_jwks(host, jwks)
        config = jwt_config(backend, issuer, jwks_uri)
    assert config is not None
    app = create_app(config, redis_url=redis_url)
    runner = GatewayRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    # As `portway serve` does (server/cli.py): start-up objects frozen, young collections rarer.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 1000)
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
        if jwks_runner is not None:
            await jwks_runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Portway with the benchmark's routes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8084)
    parser.add_argument("--backend", default="http://127.0.0.1:8081", help="HTTP_PROXY upstream base URL")
    parser.add_argument("--workers", type=int, default=1, help="worker processes for /dev/pyproc")
    parser.add_argument("--cprofile", type=Path, help="write a cProfile pstats file here on exit")
    parser.add_argument("--redis-url", help="keep the store in this Redis (default: embedded store)")
    parser.add_argument(
        "--throttle-bench",
        action="store_true",
        help="issue #5 definition: account bucket off, keyed+throttled ANY /dev/keyed/{proxy+}",
    )
    parser.add_argument("--api-key", default=BENCH_API_KEY, help="value of the key (--throttle-bench)")
    parser.add_argument("--jwt-bench", type=Path, metavar="JWKS_FILE", help="issue #9 definition (JWT)")
    parser.add_argument("--jwt-issuer", default="https://issuer.bench", help="iss of --jwt-bench tokens")
    parser.add_argument(
        "--auth-bench",
        action="store_true",
        help="issue #9 definition: HTTP_PROXY without and with a cached Lambda authorizer",
    )
    parser.add_argument("--cache-bench", action="store_true", help="issue 16 definition (stage cache)")
    args = parser.parse_args(argv)
    if args.auth_bench:
        config = auth_bench_config(args.backend)
    elif args.cache_bench:
        config = cache_config(args.backend)
    else:
        config = bench_config(
            args.backend, workers=args.workers, throttle_bench=args.throttle_bench, api_key=args.api_key
        )
    jwt = (args.backend, args.jwt_issuer, args.jwt_bench.read_bytes()) if args.jwt_bench else None
    profiler = cProfile.Profile() if args.cprofile else None
    if profiler is not None:
        profiler.enable()
    try:
        uvloop.run(serve(args.host, args.port, config, args.redis_url, jwt))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.cprofile))
            print(f"cProfile stats written to {args.cprofile}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""In-process timing of the authorize phase on a cache hit (no sockets): the ``--auth-bench``
definition of ``servers/portway_server.py``, the embedded store, route then authorize, N times.

    .venv/bin/python bench/micro_auth.py [--n 20000] [--profile]

Prints the microseconds per request of routing alone and of routing + authorizing (the
difference is the authorizer's cost per cached request); ``--profile`` adds a cProfile table.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "servers")]

from portway_server import auth_bench_config  # noqa: E402

from routes.dispatch import ApiDispatcher  # noqa: E402
from routes.integrations.python_handler import HandlerInvokers  # noqa: E402
from server.auth import lambda_authorizer  # noqa: E402, F401  (registers the builders)
from server.auth.factory import AuthDeps, build_authorizers  # noqa: E402
from server.messages import HttpRequest  # noqa: E402
from server.pipeline import RequestContext, RouteStage  # noqa: E402
from server.stages.authorize import AuthorizeStage  # noqa: E402
from server.store.memory import MemoryStore  # noqa: E402

HEADERS = (("Host", "bench"), ("Authorization", "Bearer bench"), ("User-Agent", "wrk"))


async def main(n: int, profile: bool) -> None:
    config = auth_bench_config("http://127.0.0.1:9")
    store = MemoryStore()
    await store.start()
    invokers = HandlerInvokers(region=config.region, account_id=config.account_id)
    authorize = AuthorizeStage(build_authorizers(AuthDeps(config, store=store, invokers=invokers)), config)
    route = RouteStage(ApiDispatcher(config), config)
    request = HttpRequest("GET", "/dev/authed/hello", "", HEADERS, b"", "127.0.0.1", "bench")

    async def routed_only() -> None:
        await route.on_request(RequestContext(request, "r", "e", 0))

    async def authorized() -> None:
        ctx = RequestContext(request, "r", "e", 0)
        await route.on_request(ctx)
        await authorize.on_request(ctx)

    await authorized()  # invokes the function once and caches its answer
    timings = {}
    for name, step in (("route", routed_only), ("route + authorize", authorized)):
        started = time.perf_counter()
        for _ in range(n):
            await step()
        timings[name] = (time.perf_counter() - started) / n * 1e6
    print(", ".join(f"{name} {us:.1f} us" for name, us in timings.items()), end="; ")
    print(f"authorize (cache hit) {timings['route + authorize'] - timings['route']:.1f} us per request")
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            await authorized()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    await invokers.close_all()
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.profile))

"""The aiohttp side of ``/@health`` and ``/@ready`` (what they mean: server/health.py).

Answered before routing, to any caller (probes come from load balancers and kubelets on the
network), for GET and HEAD. The store is pinged at most once a second (``PingCache``), and never
for longer than ``PING_TIMEOUT_S``: a probe must answer within its own timeout even when Redis
hangs.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.config.model import GatewayConfig
from server.health import HEALTH_PATH, READY_PATH, Lifecycle, PingCache, liveness, readiness, store_needed
from server.store.base import Store

__all__ = ["HEALTH_PATHS", "LIFECYCLE", "handle_health", "install_health"]

HEALTH_PATHS = frozenset({HEALTH_PATH, READY_PATH})
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
_PING_CACHE = web.AppKey("ready_ping_cache", PingCache)
_STORE_NEEDED = web.AppKey("store_needed", bool)
PING_TIMEOUT_S = 1.0
_NO_STORE_HEADERS = {"Cache-Control": "no-store"}


def install_health(app: web.Application, config: GatewayConfig) -> None:
    """Give ``app`` its lifecycle state; its shutdown marks it draining before anything closes."""
    app[LIFECYCLE] = Lifecycle()
    app[_PING_CACHE] = PingCache()
    app[_STORE_NEEDED] = store_needed(config)
    app.on_shutdown.insert(0, _mark_draining)


async def _mark_draining(app: web.Application) -> None:
    app[LIFECYCLE].draining = True


async def handle_health(
    request: web.Request, path: str, store: Store | None, config_loaded: bool
) -> web.Response:
    """Answer a probe of ``path`` (one of ``HEALTH_PATHS``). ``store``: the app's store, None
    before it is opened; ``config_loaded``: the gateway is built."""
    if request.method not in ("GET", "HEAD"):
        return web.json_response(
            {"message": "Method Not Allowed"}, status=405, headers={"Allow": "GET, HEAD"}
        )
    if path == HEALTH_PATH:
        status, body = liveness()
    else:
        status, body = await _readiness(request.app, store, config_loaded)
    return web.json_response(body, status=status, headers=_NO_STORE_HEADERS)


async def _readiness(
    app: web.Application, store: Store | None, config_loaded: bool
) -> tuple[int, dict[str, object]]:
    lifecycle = app[LIFECYCLE]
    reachable = False
    if store is not None:
        cache = app[_PING_CACHE]
        loop = asyncio.get_running_loop()
        known = cache.fresh(loop.time())
        if known is None:
            try:
                async with asyncio.timeout(PING_TIMEOUT_S):
                    known = await store.ping()
            except TimeoutError:
                known = False
            cache.remember(known, loop.time())
        reachable = known
    return readiness(
        config_loaded=config_loaded,
        draining=lifecycle.draining,
        store_reachable=reachable,
        store_needed=app[_STORE_NEEDED],
    )

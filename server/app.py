"""The aiohttp application factory: typed app state, resource lifecycles, the request adapter.

Every long-lived resource lives under an ``AppKey`` and is created in its own ``cleanup_ctx``
generator (setup and teardown side by side), never at import time:

* ``STORE``: the embedded store, or Redis when a URL is given;
* ``HTTP_SESSION``: one pooled ``aiohttp.ClientSession`` for every HTTP integration;
* ``INVOKERS``: Python handler invokers, one per function (worker pools are closed on shutdown);
* ``KEYS``: API keys and usage plans (:class:`server.keys.registry.KeyRegistry`);
* ``THROTTLE``: the throttle stage (its ``admission`` counters);
* ``GATEWAY``: the compiled pipeline (:class:`server.pipeline.Gateway`).

The request handler is a thin adapter: copy the aiohttp request into a
:class:`~server.messages.HttpRequest`, run the pipeline, copy the response back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from connections.bus import NodeBus
from connections.integration import build_route_integrations
from connections.management import ConnectionManager
from connections.management_http import caller_allowed, handle_management, parse_management_path
from connections.reaper import NodeReaper
from connections.registry import ConnectionRegistry
from connections.websocket import WebSocketGateway
from routes.dispatch import ApiDispatcher
from routes.integrations.factory import build_integrations
from routes.integrations.http_client import HttpClientPool
from routes.integrations.python_handler import HandlerInvokers
from server.admin.http import ADMIN, AdminApi, is_admin_path
from server.auth import lambda_authorizer  # noqa: F401  (registers the TOKEN and REQUEST builders)
from server.auth.base import Authorizer
from server.auth.factory import AuthDeps, build_authorizers, close_authorizers
from server.config.model import ApiKind, GatewayConfig
from server.errors import RequestTooLarge
from server.ids import new_apigw_id, new_request_uuid
from server.keys.registry import KeyRegistry
from server.messages import HttpRequest, HttpResponse
from server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from server.metrics import Sources, exposition
from server.pipeline import Gateway, default_stages
from server.render import add_request_headers, render_error
from server.stages.authorize import AuthorizeStage
from server.stages.throttle import ThrottleStage
from server.store.base import Store, StoreUnavailable
from server.store.factory import open_store
from server.tasks import stop_tasks

__all__ = ["CONFIG", "GATEWAY", "HTTP_SESSION", "INVOKERS", "KEYS", "STORE", "THROTTLE", "create_app"]

log = logging.getLogger("portway.app")

CONFIG = web.AppKey("config", GatewayConfig)
DISPATCHER = web.AppKey("dispatcher", ApiDispatcher)
STORE = web.AppKey("store", Store)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
HTTP_CLIENT = web.AppKey("http_client", HttpClientPool)
INVOKERS = web.AppKey("invokers", HandlerInvokers)
GATEWAY = web.AppKey("gateway", Gateway)
WEBSOCKETS = web.AppKey("websockets", WebSocketGateway)
CONNECTIONS = web.AppKey("connections", ConnectionManager)
KEYS = web.AppKey("keys", KeyRegistry)
THROTTLE = web.AppKey("throttle", ThrottleStage)
REAPER = web.AppKey("reaper", NodeReaper)
NODE_ID = web.AppKey("node_id", str)
MAX_BODY = web.AppKey("max_body", int)
AUTHORIZERS = web.AppKey("authorizers", Mapping[int, Authorizer])


def create_app(
    config: GatewayConfig, *, redis_url: str | None = None, state_path: str | os.PathLike[str] | None = None
) -> web.Application:
    """Build the gateway application for ``config`` (embedded store unless ``redis_url``; its
    durable keys kept in ``state_path`` if given, which the Redis store ignores)."""
    max_body = max((api.max_body_bytes for api in config.apis), default=10 * 1024 * 1024)
    # aiohttp enforces the limit while reading; +1 so that exactly `max_body` bytes are accepted.
    app = web.Application(client_max_size=max_body + 1, handler_args={"max_field_size": 16384})
    app[CONFIG] = config
    app[DISPATCHER] = ApiDispatcher(config)  # validates mounts before anything starts
    app[MAX_BODY] = max_body
    app[NODE_ID] = uuid.uuid4().hex[:12]
    app[ADMIN] = AdminApi.from_env(config)  # credentials from the environment, read once

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = open_store(redis_url, state_path=state_path)
        try:
            await store.start()
        except StoreUnavailable as exc:
            # Serve anyway: the store reconnects by itself, and each caller applies its policy.
            log.warning("store %s unavailable at start-up: %s", store.name, exc)
        app[STORE] = store
        yield
        await store.close()

    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(_keys_ctx)
    app.cleanup_ctx.append(_http_session_ctx)
    app.cleanup_ctx.append(_gateway_ctx)
    app.on_shutdown.append(_close_websockets)
    app.router.add_route("*", "/{tail:.*}", handle_request)
    return app


async def _keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """API keys and usage plans: the configuration's applied to the store, a copy per node."""
    config = app[CONFIG]
    stages = [
        (api.id, stage.name) for api in config.apis if api.kind is not ApiKind.HTTP for stage in api.stages
    ]
    registry = KeyRegistry(app[STORE], known_stages=stages)
    await registry.start(config.usage_plans, config.api_keys)
    app[KEYS] = registry
    yield
    await registry.close()


async def _http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
    session = aiohttp.ClientSession(
        connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    )
    app[HTTP_SESSION] = session
    # Backend connections of the HTTP/HTTP_PROXY integrations (the lean keep-alive client).
    client = HttpClientPool()
    app[HTTP_CLIENT] = client
    yield
    await client.close()
    await session.close()


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    invokers = HandlerInvokers(region=config.region, account_id=config.account_id)
    app[INVOKERS] = invokers
    try:
        integrations = build_integrations(
            config, session=app[HTTP_SESSION], client=app[HTTP_CLIENT], invokers=invokers
        )
        throttle = ThrottleStage(app[STORE], config, app[KEYS])
        app[THROTTLE] = throttle
        authorizers = build_authorizers(AuthDeps(config, store=app[STORE], invokers=invokers))
        app[AUTHORIZERS] = authorizers
        authorize = AuthorizeStage(authorizers, config) if authorizers else None
        app[GATEWAY] = Gateway(
            default_stages(app[DISPATCHER], config, integrations, authorize=authorize, throttle=throttle)
        )
        ws_integrations = {
            api.id: build_route_integrations(api, client=app[HTTP_CLIENT], invokers=invokers)
            for api in config.apis
            if api.kind is ApiKind.WEBSOCKET
        }
        store = app[STORE]
        registry = ConnectionRegistry(store, app[NODE_ID])
        websockets = WebSocketGateway(
            config,
            registry,
            ws_integrations,
            keys=app[KEYS],
            admission=throttle.admission,
            authorizers=authorizers,
        )
        app[WEBSOCKETS] = websockets
        manager = ConnectionManager(registry)
        app[CONNECTIONS] = manager
        tasks = [asyncio.create_task(websockets.run_sweeper())]
        bus: NodeBus | None = None
        if store.name != "embedded":
            # Several nodes may share this store: cross-node delivery and dead-node cleanup.
            cluster = config.cluster
            bus = NodeBus(
                store,
                app[NODE_ID],
                on_request=manager.on_request,
                on_fanout=manager.on_fanout,
                on_beat=registry.sync,
                heartbeat=cluster.heartbeat_s,
                node_ttl=cluster.node_ttl_s,
                rpc_timeout=cluster.rpc_timeout_s,
            )
            manager.bus = bus
            await bus.start()
            reaper = NodeReaper(config, registry, websockets, interval=cluster.reaper_interval_s)
            app[REAPER] = reaper
            tasks.append(asyncio.create_task(reaper.run()))
        yield
        await stop_tasks(tasks)  # not a bare cancel(): see stop_tasks
        if bus is not None:
            await bus.close()
        await close_authorizers(authorizers)
    finally:
        await invokers.close_all()


def _metrics(request: web.Request) -> web.Response:
    """``GET /@metrics`` (Prometheus), for the callers the @connections API accepts."""
    if not caller_allowed(request.remote):
        return web.json_response({"message": "Forbidden"}, status=403)
    app = request.app
    admission = app[THROTTLE].admission
    keys = app[KEYS]
    sources = Sources(
        throttle_checked=lambda: admission.checked,
        throttle_limited=lambda: admission.limited,
        throttle_quota_limited=lambda: admission.quota_limited,
        throttle_store_errors=lambda: admission.store_errors,
        throttle_store_failing=lambda: admission.failing,
        api_keys=lambda: len(keys.keys()),
        usage_plans=lambda: len(keys.plans()),
        websocket_connections=lambda: len(app[WEBSOCKETS].registry),
        websocket_flood_closes=lambda: app[WEBSOCKETS].flood_closes,
    )
    return web.Response(body=exposition(sources), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _close_websockets(app: web.Application) -> None:
    """on_shutdown: every socket gets close 1001 and its $disconnect, before resources close."""
    websockets = app.get(WEBSOCKETS)
    if websockets is not None:
        await websockets.shutdown()


async def handle_request(request: web.Request) -> web.StreamResponse:
    app = request.app
    raw_path = request.raw_path.partition("?")[0]
    if request.headers.get("Upgrade", "").lower() == "websocket":
        dispatch = app[DISPATCHER].resolve_websocket(raw_path)
        if dispatch is not None:
            return await app[WEBSOCKETS].handle(request, dispatch)
    if "/@" in raw_path or "%40" in raw_path:  # every management path has one (cheap pre-check)
        if is_admin_path(raw_path):
            return await app[ADMIN].handle(request, app[KEYS], app[STORE])
        if raw_path == "/@metrics":
            return _metrics(request)
        management = parse_management_path(raw_path)
        if management is not None:
            ws_dispatch = app[DISPATCHER].resolve_websocket(management.prefix)
            if ws_dispatch is not None:
                return await handle_management(request, management, ws_dispatch, app[CONNECTIONS])
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        response = render_error(RequestTooLarge(app[MAX_BODY]))
        add_request_headers(
            response, request_id=new_request_uuid(), extended_request_id=new_apigw_id(), http_api=False
        )
        return _to_web(response)
    raw = request.raw_path
    path, _, query = raw.partition("?")
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    http_request = HttpRequest(
        method=request.method,
        raw_path=path,
        query_string=query,
        headers=_headers(request),
        body=body,
        source_ip=peer[0] if peer else "",
        host=request.host,
        scheme=request.scheme,
        protocol=f"HTTP/{request.version.major}.{request.version.minor}",
    )
    response = await app[GATEWAY].handle(http_request)
    return _to_web(response)


def _headers(request: web.Request) -> tuple[tuple[str, str], ...]:
    # raw_headers keeps the client's casing and repeats, as API Gateway's events do.
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers)


def _to_web(response: HttpResponse) -> web.Response:
    return web.Response(status=response.status, body=response.body, headers=CIMultiDict(response.headers))

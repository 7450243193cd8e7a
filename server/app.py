"""The aiohttp application factory: typed app state, resource lifecycles, the request adapter.

Every long-lived resource lives under an ``AppKey`` and is created in its own ``cleanup_ctx``
generator (setup and teardown side by side), never at import time:

* ``STORE``: the embedded store, or Redis when a URL is given;
* ``HTTP_SESSION``: one pooled ``aiohttp.ClientSession`` for every HTTP integration;
* ``INVOKERS``: Python handler invokers, one per function (worker pools are closed on shutdown);
* ``KEYS``: API keys and usage plans (:class:`server.keys.registry.KeyRegistry`);
* ``THROTTLE``: the throttle stage (its ``admission`` counters);
* ``GATEWAY``: the compiled pipeline (:class:`server.pipeline.Gateway`).

The request handler is a thin adapter: copy the aiohttp request's head into a
:class:`~server.messages.HttpRequest`, run the pipeline with a body reader it calls once the
request is routed and admitted (so a refused request's body is never read), copy the response
back. The reader bounds the body's read time and the bytes of bodies in flight
(:class:`~server.limits.ServerLimits`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import StreamReader, web
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.web_protocol import RequestPayloadError
from multidict import CIMultiDict

from connections.bus import NodeBus
from connections.integration import RouteIntegration, build_route_integrations
from connections.management import ConnectionManager
from connections.management_http import ManagementAccess, handle_management, parse_management_path
from connections.reaper import NodeReaper
from connections.registry import ConnectionRegistry
from connections.websocket import WebSocketGateway
from routes.dispatch import ApiDispatcher
from routes.integrations.aws_clients import AwsClients
from routes.integrations.factory import aws_client_keys, build_integrations
from routes.integrations.http_client import HttpClientPool
from routes.integrations.python_deps import cache_dir
from routes.integrations.python_handler import HandlerInvokers
from routes.integrations.python_workers import WorkerPoolInvoker
from server.access_format import compile_format
from server.access_log import AccessLog, LoggedRouteIntegration
from server.admin.http import ADMIN, AdminApi, is_admin_path
from server.auth import (
    jwt_authorizer,  # noqa: F401  (registers the JWT and Cognito builders)
    lambda_authorizer,  # noqa: F401  (registers the TOKEN and REQUEST builders)
)
from server.auth.base import Authorizer
from server.auth.factory import AuthDeps, build_authorizers, close_authorizers
from server.auth.iam import IamKeyring
from server.config.model import ApiConfig, ApiKind, GatewayConfig
from server.errors import (
    GatewayError,
    HeadersTooLarge,
    MalformedRequest,
    RequestTimeout,
    RequestTooLarge,
    ServiceUnavailable,
)
from server.gateway_responses import compile_gateway_responses
from server.health_http import HEALTH_PATHS, handle_health, install_health
from server.ids import new_apigw_id, new_request_uuid
from server.keys.registry import KeyRegistry
from server.limits import DEFAULT_LIMITS, BodyBudget, ServerLimits, request_head_size
from server.messages import HttpRequest, HttpResponse
from server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from server.metrics import PoolFigures, Sources, exposition
from server.pipeline import Gateway, default_stages
from server.render import add_request_headers, render_error
from server.request_metrics import RequestMetrics
from server.stages.authorize import AuthorizeStage
from server.stages.cache import CacheStage
from server.stages.cors import CorsStage
from server.stages.throttle import ThrottleStage
from server.stages.transform import TransformRequestStage, wrap_integrations
from server.stages.validate import ValidateStage
from server.store.base import Store, StoreUnavailable
from server.store.factory import open_store
from server.tasks import stop_tasks

__all__ = [
    "BODY_BUDGET",
    "CACHE",
    "CONFIG",
    "GATEWAY",
    "HTTP_SESSION",
    "INVOKERS",
    "KEYS",
    "LIMITS",
    "STORE",
    "THROTTLE",
    "create_app",
]

log = logging.getLogger("portway.app")

CONFIG = web.AppKey("config", GatewayConfig)
DISPATCHER = web.AppKey("dispatcher", ApiDispatcher)
STORE = web.AppKey("store", Store)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
HTTP_CLIENT = web.AppKey("http_client", HttpClientPool)
AWS_CLIENTS = web.AppKey("aws_clients", AwsClients)
INVOKERS = web.AppKey("invokers", HandlerInvokers)
GATEWAY = web.AppKey("gateway", Gateway)
WEBSOCKETS = web.AppKey("websockets", WebSocketGateway)
CONNECTIONS = web.AppKey("connections", ConnectionManager)
KEYS = web.AppKey("keys", KeyRegistry)
THROTTLE = web.AppKey("throttle", ThrottleStage)
CACHE = web.AppKey("cache", CacheStage)
REAPER = web.AppKey("reaper", NodeReaper)
NODE_ID = web.AppKey("node_id", str)
MAX_BODY = web.AppKey("max_body", int)
AUTHORIZERS = web.AppKey("authorizers", Mapping[int, Authorizer])
LIMITS = web.AppKey("limits", ServerLimits)
BODY_BUDGET = web.AppKey("body_budget", BodyBudget)
PASS_ENV = web.AppKey("pass_env", tuple[str, ...])
ACCESS_LOG = web.AppKey("access_log", AccessLog)
IAM_KEYRING = web.AppKey("iam_keyring", IamKeyring)
MANAGEMENT_ACCESS = web.AppKey("management_access", ManagementAccess)
REQUEST_METRICS = web.AppKey("request_metrics", RequestMetrics)
# False when /@metrics is served by a separate admin listener (--admin-port) instead.
METRICS_ON_API = web.AppKey("metrics_on_api", bool)


def create_app(
    config: GatewayConfig,
    *,
    redis_url: str | None = None,
    state_path: str | os.PathLike[str] | None = None,
    limits: ServerLimits = DEFAULT_LIMITS,
    pass_env: tuple[str, ...] = (),
    access_log: AccessLog | None = None,
    request_metrics: bool = True,
    metrics_on_api: bool = True,
) -> web.Application:
    """Build the gateway application for ``config`` (embedded store unless ``redis_url``; its
    durable keys kept in ``state_path`` if given, which the Redis store ignores). ``limits``:
    the body deadline and in-flight cap used here; the listener's own deadlines are applied by
    :class:`server.http_server.GatewayRunner`. ``pass_env``: gateway environment variables handler
    workers also get, see ``lambda_env``; ``access_log``: where the access lines go, none by
    default: the CLI's console has them unless ``--quiet``; ``request_metrics``: count requests
    per route and time them for ``/@metrics`` (``PORTWAY_REQUEST_METRICS=0`` turns it off);
    ``metrics_on_api``: False when an admin listener serves ``/@metrics`` instead of this one."""
    max_body = max((api.max_body_bytes for api in config.apis), default=10 * 1024 * 1024)
    # aiohttp enforces the limit while reading; +1 so that exactly `max_body` bytes are accepted.
    app = web.Application(client_max_size=max_body + 1, handler_args={"max_field_size": 16384})
    app[CONFIG] = config
    app[DISPATCHER] = ApiDispatcher(config)  # validates mounts before anything starts
    app[MAX_BODY] = max_body
    app[LIMITS] = limits
    app[BODY_BUDGET] = BodyBudget(limits.max_body_bytes_in_flight)
    install_health(app, config)  # /@health, /@ready; draining from the first shutdown step
    app[PASS_ENV] = pass_env
    if access_log is not None:
        app[ACCESS_LOG] = access_log
    if request_metrics:
        app[REQUEST_METRICS] = RequestMetrics()  # plain ints: no resource to open or close
    app[METRICS_ON_API] = metrics_on_api
    app[NODE_ID] = uuid.uuid4().hex[:12]
    app[ADMIN] = AdminApi.from_env(config)  # credentials from the environment, read once
    # SigV4 keys (aws_iam routes, @connections): secrets read once; a missing one stops here.
    app[IAM_KEYRING] = IamKeyring.from_config(config)
    app[MANAGEMENT_ACCESS] = ManagementAccess.from_config(config, app[IAM_KEYRING])

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
    app.cleanup_ctx.append(_aws_clients_ctx)
    app.cleanup_ctx.append(_gateway_ctx)
    app.on_shutdown.append(_close_websockets)
    app.on_response_prepare.append(_drop_server_header)
    # [\s\S]: a decoded path may hold a newline (%0A); `.*` would leave it to aiohttp's plain 404.
    app.router.add_route("*", r"/{tail:[\s\S]*}", handle_request, expect_handler=_expect_after_routing)
    return app


async def _drop_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """AWS sends no ``Server`` header; aiohttp adds one before this hook runs."""
    response.headers.popall("Server", None)


async def _expect_after_routing(request: web.Request) -> None:
    """``Expect: 100-continue``: the gateway's routes answer it only once routed and admitted
    (the body reader sends the 100), so a refused client never sends its body. Management
    paths read their bodies at once, as aiohttp would."""
    raw_path = request.raw_path
    if "/@" in raw_path or "%40" in raw_path:
        await _send_continue(request)


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


async def _aws_clients_ctx(app: web.Application) -> AsyncIterator[None]:
    """The aiobotocore clients of the AWS integrations: opened before serving, shared by routes."""
    clients = AwsClients()
    await clients.open(aws_client_keys(app[CONFIG]))
    app[AWS_CLIENTS] = clients
    yield
    await clients.close()


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    invokers = HandlerInvokers(region=config.region, account_id=config.account_id, pass_env=app[PASS_ENV])
    app[INVOKERS] = invokers
    try:
        # Before serving: interpreters picked and requirements installed, never on a request.
        await invokers.prepare(config, cache_dir(config.source))
        integrations = build_integrations(
            config,
            session=app[HTTP_SESSION],
            client=app[HTTP_CLIENT],
            invokers=invokers,
            aws=app[AWS_CLIENTS],
        )
        throttle = ThrottleStage(app[STORE], config, app[KEYS])
        app[THROTTLE] = throttle
        keyring = app[IAM_KEYRING]
        authorizers = build_authorizers(
            AuthDeps(config, store=app[STORE], invokers=invokers, extra={"iam_keyring": keyring})
        )
        app[AUTHORIZERS] = authorizers
        policies = any(api.resource_policy is not None for api in config.apis)
        authorize = AuthorizeStage(authorizers, config) if authorizers or policies else None
        access = app.get(ACCESS_LOG)
        formatted = access is not None and _access_formats(access, config)
        metrics = app.get(REQUEST_METRICS)
        validate = ValidateStage(config)  # schemas compiled here, once
        transform = TransformRequestStage(config)  # templates compiled here, once
        integrations = wrap_integrations(config, integrations)
        cors = CorsStage(app[DISPATCHER], config)
        # The cache phase only when some stage caches: zero cost otherwise.
        cache = CacheStage(app[STORE]) if any(s.cache for a in config.apis for s in a.stages) else None
        if cache is not None:
            app[CACHE] = cache
        stages = default_stages(
            app[DISPATCHER],
            config,
            integrations,
            metrics=metrics,
            cors=cors if cors else None,
            authorize=authorize,
            throttle=throttle,
            cache=cache,
            validate=validate if validate else None,
            transform_request=transform if transform else None,
        )
        app[GATEWAY] = Gateway(
            stages,
            access=access.line if access is not None and not formatted else None,
            access_record=access.record if access is not None and formatted else None,
            metrics=metrics,
            gateway_responses=compile_gateway_responses(config),
        )
        ws_integrations = {
            api.id: _logged(
                api, build_route_integrations(api, client=app[HTTP_CLIENT], invokers=invokers), access
            )
            for api in config.apis
            if api.kind is ApiKind.WEBSOCKET
        }
        await invokers.prestart()  # provisionedConcurrency: warm before the first request
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


def _logged(
    api: ApiConfig, integrations: dict[str, RouteIntegration], access: AccessLog | None
) -> dict[str, RouteIntegration]:
    """A WebSocket API's route integrations, each writing an access line per event if asked."""
    if access is None:
        return integrations
    routes = {route.path: route.integration for route in api.routes}
    path = "/" + "|".join(stage.name for stage in api.stages)
    return {
        key: LoggedRouteIntegration(
            integration,
            access,
            key,
            path,
            routes[key].function_name or routes[key].type.value,
            access.api_formats.get(api.id, access.format),
        )
        for key, integration in integrations.items()
    }


def _metrics(request: web.Request) -> web.Response:
    """``GET /@metrics`` (Prometheus), for the networks the @connections API accepts (no
    signature: scrapers do not sign; keep ``management.allowNetworks`` to the scraper's)."""
    return metrics_response(request.app, request)


def metrics_response(app: web.Application, request: web.Request) -> web.Response:
    """The metrics page of gateway ``app`` (also served by the admin listener, server/admin_site.py)."""
    if not app[MANAGEMENT_ACCESS].network_allows(request.remote, request.headers):
        return web.json_response({"message": "Forbidden"}, status=403)
    admission = app[THROTTLE].admission
    keys = app[KEYS]
    registry = app[WEBSOCKETS].registry
    invokers = app[INVOKERS]
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
        websocket_control_flood_closes=lambda: app[WEBSOCKETS].control_flood_closes,
        requests=app.get(REQUEST_METRICS),
        websocket_connects=lambda: registry.connected,
        websocket_disconnects=lambda: registry.disconnected,
        websocket_messages=registry.messages,
        connection_store_errors=lambda: registry.store_errors,
        store_latency=lambda: admission.store_latency,
        worker_pools=lambda: _pool_figures(invokers),
    )
    if (cache := app.get(CACHE)) is not None:
        sources.cache_hits, sources.cache_misses = lambda: cache.hits, lambda: cache.misses
    return web.Response(body=exposition(sources), headers={"Content-Type": METRICS_CONTENT_TYPE})


def _pool_figures(invokers: HandlerInvokers) -> list[PoolFigures]:
    return [
        PoolFigures(
            function=pool.name,
            workers=len(pool.processes),
            waiting=pool.waiting,
            spawned=pool.spawned,
            killed=pool.killed,
            timeouts=pool.timeouts,
            queue_full=pool.queue_full,
        )
        for pool in invokers.all()
        if isinstance(pool, WorkerPoolInvoker)
    ]


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
    elif (
        app[DISPATCHER].resolve_websocket(raw_path) is not None and app[DISPATCHER].resolve(raw_path) is None
    ):
        # A WebSocket endpoint asked for plain HTTP: 426, as AWS answers (aws-contract.md §1.4).
        return web.Response(status=426, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    if "/@" in raw_path or "%40" in raw_path:  # every management path has one (cheap pre-check)
        if raw_path in HEALTH_PATHS:  # any caller: load balancers and kubelets probe these
            return await handle_health(request, raw_path, app.get(STORE), GATEWAY in app)
        if is_admin_path(raw_path):
            return await app[ADMIN].handle(request, app[KEYS], app[STORE])
        if raw_path == "/@metrics" and app[METRICS_ON_API]:
            return _metrics(request)
        management = parse_management_path(raw_path)
        if management is not None:
            ws_dispatch = app[DISPATCHER].resolve_websocket(management.prefix)
            if ws_dispatch is not None:
                answer = await handle_management(
                    request, management, ws_dispatch, app[CONNECTIONS], app[MANAGEMENT_ACCESS]
                )
                metrics = app.get(REQUEST_METRICS)
                if metrics is not None:
                    metrics.management_call(request.method, answer.status)
                return answer
    if request.version < HttpVersion10:
        return _refuse(MalformedRequest())  # HTTP/0.9 has no headers: no Host, no framing
    raw = request.raw_path
    limits = app[LIMITS]
    raw_headers = request.raw_headers
    if request_head_size(request.method, raw, [value for _, value in raw_headers]) > limits.max_header_bytes:
        return _refuse(HeadersTooLarge())
    path, _, query = raw.partition("?")
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    http_request = HttpRequest(
        method=request.method,
        raw_path=path,
        query_string=query,
        headers=_headers(raw_headers),
        body=b"",
        source_ip=peer[0] if peer else "",
        host=request.host,
        scheme=request.scheme,
        protocol=f"HTTP/{request.version.major}.{request.version.minor}",
        content_length=request.content_length,
    )
    if not request.body_exists:
        return _to_web(await app[GATEWAY].handle(http_request))
    reader = _BodyReader(request, app[BODY_BUDGET], limits.body_timeout_s)
    try:
        response = await app[GATEWAY].handle(http_request, reader.read)
    finally:
        reader.release()  # the body's bytes are the integration's garbage now
    web_response = _to_web(response)
    if not reader.complete:
        # Refused before its body was read: do not keep a connection whose next bytes are
        # that body (aiohttp discards what still arrives, for at most its lingering time).
        web_response.force_close()
    return web_response


def _refuse(error: GatewayError) -> web.Response:
    response = render_error(error)
    add_request_headers(
        response, request_id=new_request_uuid(), extended_request_id=new_apigw_id(), http_api=False
    )
    web_response = _to_web(response)
    web_response.force_close()
    return web_response


async def _send_continue(request: web.Request) -> None:
    if request.version == HttpVersion11 and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response proper has not started (as aiohttp does)


class _BodyReader:
    """Reads one request's body on the pipeline's demand, within the body deadline, the API's
    size limit and the process-wide budget of body bytes in flight (held until :meth:`release`)."""

    __slots__ = ("_request", "_budget", "_timeout_s", "_held", "complete")

    def __init__(self, request: web.Request, budget: BodyBudget, timeout_s: float) -> None:
        self._request = request
        self._budget = budget
        self._timeout_s = timeout_s
        self._held = 0
        self.complete = False

    async def read(self, max_bytes: int) -> bytes:
        request = self._request
        # Reserve the announced size before reading a byte (chunked bodies reserve as they come).
        self._reserve(request.content_length or 0)
        await _send_continue(request)
        content = request.content
        try:
            if content.is_eof():  # all of it arrived with the headers: no deadline to arm
                body = await self._drain(content, max_bytes)
            else:
                async with asyncio.timeout(self._timeout_s if self._timeout_s > 0 else None):
                    body = await self._drain(content, max_bytes)
        except TimeoutError:
            raise RequestTimeout() from None
        except (RequestPayloadError, ConnectionError):
            raise MalformedRequest() from None  # bad chunk framing, or the client went away
        self.complete = True
        return body

    async def _drain(self, content: StreamReader, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := await content.readany():
            size += len(chunk)
            if size > max_bytes:
                raise RequestTooLarge(max_bytes)
            if size > self._held:
                self._reserve(size - self._held)
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _reserve(self, size: int) -> None:
        if size and not self._budget.take(size):
            raise ServiceUnavailable(headers={"Retry-After": "1"})
        self._held += size

    def release(self) -> None:
        self._budget.give(self._held)
        self._held = 0


def _headers(raw_headers: tuple[tuple[bytes, bytes], ...]) -> tuple[tuple[str, str], ...]:
    # raw_headers keeps the client's casing and repeats, as API Gateway's events do.
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers)


def _to_web(response: HttpResponse) -> web.Response:
    # No Server header: _drop_server_header (on_response_prepare) removes aiohttp's.
    return web.Response(status=response.status, body=response.body, headers=CIMultiDict(response.headers))


def _access_formats(access: AccessLog, config: GatewayConfig) -> bool:
    """Give ``access`` the APIs' own formats; True when some request line is formatted."""
    access.api_formats = {
        api.id: compile_format(api.access_log_format)
        for api in config.apis
        if api.access_log_format is not None
    }
    return access.format is not None or bool(access.api_formats)

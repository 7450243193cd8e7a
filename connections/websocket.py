"""The WebSocket connection lifecycle: ``$connect`` -> messages -> ``$disconnect``.

Reference: docs/aws-contract.md §1. One :class:`WebSocketGateway` per process serves every WebSocket API:

1. **Upgrade.** The ``$connect`` integration (if any) runs *before* the handshake completes. A
   non-2xx ``statusCode`` fails the handshake with that status, a failure with 502; a
   ``Sec-WebSocket-Protocol`` response header picks the subprotocol. Only then is the 101 sent and
   the connection registered, so ``@connections`` answers 410 for it until ``$connect`` returned.
2. **Messages.** Each text message is routed by the API's selection expression (``$default`` as
   fallback; no route -> AWS's ``Forbidden`` frame, connection kept). A route's integration output
   is sent back only if the route has a route response; an integration failure sends AWS's
   ``Internal server error`` frame and keeps the socket open. A connection's messages are processed
   in order, one at a time (``max_inflight`` = 1, the default) or up to ``max_inflight`` at once;
   beyond that, reading pauses (backpressure, not buffering).
3. **Limits.** Frames over ``max_frame_bytes`` and messages over ``max_message_bytes`` close with
   1009 (:mod:`connections.frames`); binary frames close with 1003
   unless allowed; idle and lifetime timers close with 1001 (checked by one sweeper per process,
   not a timer per socket, to keep idle connections cheap).
4. **Close.** ``$disconnect`` runs once, after the socket closed, with the close code and reason.
   On shutdown every socket gets close 1001 and its ``$disconnect``.
5. **Throttling and API keys**: :mod:`connections.throttle` (``$connect`` and every message).

The rules (close codes, timers, in-flight count, frame and control-frame budgets) are decided by
each connection's pure core (:mod:`connections.core`); this module is the aiohttp adapter that
performs what it decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Mapping

from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from connections.connect_auth import authorize_connect
from connections.core import (
    ABNORMAL,
    CONTROL_FLOOD,
    GOING_AWAY,
    PING,
    Close,
    ConnectionCore,
    client_close,
    close_for_error,
    close_frame,
    error_reason,
)
from connections.events import ConnectionInfo, connect_event, disconnect_event, error_frame, message_event
from connections.frames import FrameGuard
from connections.integration import RouteIntegration, RouteIntegrationError
from connections.registry import ConnectionRegistry, LocalConnection
from connections.throttle import FLOOD_CLOSE_CODE, FLOOD_CLOSE_REASON, WebSocketThrottle
from routes.dispatch import Dispatch
from routes.selection import SelectionExpression, compile_expression, select_route
from server.auth.base import Authorizer, AuthResult
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    RouteConfig,
    StageConfig,
    UsagePlanConfig,
    WebSocketSettings,
)
from server.errors import GatewayError
from server.event_headers import websocket_connect_headers
from server.ids import new_apigw_id, new_message_id
from server.keys.records import ApiKey
from server.keys.registry import KeyRegistry
from server.render import render_error
from server.throttle.admission import Admission
from server.trace import TRACE_HEADER, trace_header
from server.validation import MessageValidator, bad_body_frame

__all__ = ["FLOOD_CLOSE_CODE", "FLOOD_CLOSE_REASON", "WebSocketGateway", "error_frame"]

log = logging.getLogger("portway.websocket")

_INTERNAL_ERROR = b'{"message": "Internal server error"}'


class _ApiRuntime:
    """Everything compiled once per WebSocket API."""

    __slots__ = (
        "api",
        "connect_authorizer",
        "connect_key_required",
        "expression",
        "integrations",
        "route_keys",
        "routes",
        "stages",
        "validators",
    )

    def __init__(
        self,
        api: ApiConfig,
        integrations: Mapping[str, RouteIntegration],
        authorizers: Mapping[int, Authorizer],
    ) -> None:
        self.api = api
        self.expression: SelectionExpression = compile_expression(api.route_selection_expression)
        self.routes: dict[str, RouteConfig] = {r.path: r for r in api.routes}
        self.integrations = integrations
        # Keys a message may select: custom routes and $default (never $connect/$disconnect).
        self.route_keys = frozenset(k for k in self.routes if not k.startswith("$") or k == "$default")
        self.stages: dict[str, StageConfig] = {s.name: s for s in api.stages}
        # apiKeyRequired counts on $connect only (aws-contract.md §1.1): checked once per connection.
        connect = self.routes.get("$connect")
        self.connect_key_required = connect is not None and connect.api_key_required
        # Authorization is set on $connect only and protects every later message (§1.1).
        self.connect_authorizer = authorizers.get(id(connect)) if connect is not None else None
        # Route models (docs/transform.md), compiled once; most routes have none.
        self.validators = {
            r.path: MessageValidator(r.validation, api.models) for r in api.routes if r.validation is not None
        }


class WebSocketGateway:
    """Every WebSocket API of the process; see the module docstring.

    ``keys``: the API key registry (None: every key check fails, 403). ``admission``: the store
    decision shared with HTTP (the throttle stage's, so its counters cover both); None switches
    throttling off. ``authorizers``: ``id(route) -> Authorizer`` from the factory (the
    ``$connect`` route's is asked before the handshake, :mod:`connections.connect_auth`).
    Counter: ``flood_closes``, connections closed by the flood policy.
    """

    def __init__(
        self,
        config: GatewayConfig,
        registry: ConnectionRegistry,
        integrations: Mapping[str, Mapping[str, RouteIntegration]],
        *,
        keys: KeyRegistry | None = None,
        admission: Admission | None = None,
        authorizers: Mapping[int, Authorizer] | None = None,
    ) -> None:
        self.registry = registry
        self._region = config.region
        self._account_id = config.account_id
        self.throttle = WebSocketThrottle(config, keys, admission)
        self._apis = {
            api.id: _ApiRuntime(api, integrations.get(api.id, {}), authorizers or {})
            for api in config.apis
            if api.kind is ApiKind.WEBSOCKET
        }
        self._cleanups: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()  # set when no socket is open and no $disconnect is running
        self._idle.set()
        self.disconnects_run = 0
        self.control_flood_closes = 0

    async def _finish(self, conn: LocalConnection, runtime: _ApiRuntime, code: int, reason: str) -> None:
        await self.registry.unregister(conn)
        await self._disconnect(conn, runtime, code, reason)

    def _cleanup_done(self, task: asyncio.Task[None]) -> None:
        self._cleanups.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("closing a connection failed", exc_info=task.exception())
        if not self._cleanups and len(self.registry) == 0:
            self._idle.set()

    @property
    def admission(self) -> Admission | None:
        return self.throttle.admission

    @property
    def flood_closes(self) -> int:
        """Connections closed with 1008 by the flood policy."""
        return self.throttle.flood_closes

    # Lifecycle ----------------------------------------------------------------------------------

    async def handle(self, request: web.Request, dispatch: Dispatch) -> web.StreamResponse:
        """One WebSocket connection: ``$connect`` (the handshake's answer), then the socket until
        it closes, then ``$disconnect``."""
        runtime = self._apis[dispatch.api.id]
        now = time.time()
        now_ms = int(now * 1000)
        connection_id = new_apigw_id()
        auth: AuthResult | None = None
        try:
            if runtime.connect_authorizer is not None:  # before the key, as on AWS
                auth = await authorize_connect(
                    runtime.connect_authorizer,
                    request,
                    dispatch,
                    connection_id=connection_id,
                    request_id=new_apigw_id(),
                    now_ms=now_ms,
                    region=self._region,
                    account_id=self._account_id,
                )
            key_value, key, plan = await self.throttle.admit_connect(
                runtime.api,
                dispatch.stage,
                request.headers,
                now,
                key_required=runtime.connect_key_required,
                authorizer_key=auth.usage_identifier_key if auth is not None else None,
            )
        except GatewayError as exc:  # Unauthorized, AccessDenied, InvalidApiKey, Throttled, ...
            return _refusal(exc)
        info = _connection_info(
            request, runtime.api, dispatch.stage, now, key_value, key, connection_id, auth
        )
        connected = await self._run_connect(request, runtime, info)
        if isinstance(connected, web.Response):
            return connected
        conn = await self._open(request, runtime, dispatch.stage, info, connected, plan)
        try:
            await self._read(conn, runtime)
        finally:
            # aiohttp cancels this handler when the client's TCP connection goes away, so the
            # close bookkeeping and $disconnect run in their own task that nothing cancels.
            # $disconnect reports the close the client got; none (TCP dropped): 1006.
            code, reason = conn.core.outcome(ABNORMAL)
            cleanup = asyncio.create_task(self._finish(conn, runtime, code, reason))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanup_done)
            await asyncio.shield(cleanup)
        return conn.ws

    async def _run_connect(
        self, request: web.Request, runtime: _ApiRuntime, info: ConnectionInfo
    ) -> str | None | web.Response:
        """The ``$connect`` integration, before the handshake: the subprotocol it picked (or
        None), or the failed handshake's response (its non-2xx status, 502 on a failure)."""
        connect = runtime.integrations.get("$connect")
        if connect is None:
            return None
        request_id = new_apigw_id()
        headers = websocket_connect_headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            trace_id=trace_header(request.headers.get(TRACE_HEADER), info.connected_at_ms),
            source_ip=info.source_ip,
            host=request.host,
            secure=request.secure,
        )
        query = request.raw_path.partition("?")[2]
        event = connect_event(
            info, headers=headers, query_string=query, request_id=request_id, now_ms=info.connected_at_ms
        )
        try:
            result = await connect.invoke(event, request_id=request_id)
        except RouteIntegrationError:
            return web.Response(status=502, body=_INTERNAL_ERROR, content_type="application/json")
        if not 200 <= result.status < 300:
            return web.Response(status=result.status, text=result.body or "")
        return next((v for k, v in result.headers.items() if k.lower() == "sec-websocket-protocol"), None)

    async def _open(
        self,
        request: web.Request,
        runtime: _ApiRuntime,
        stage: StageConfig,
        info: ConnectionInfo,
        protocol: str | None,
        plan: UsagePlanConfig | None,
    ) -> LocalConnection:
        """Send the 101, put the frame rules in front of aiohttp's parser, register the socket."""
        api = runtime.api
        settings = api.websocket
        ws = _GatewaySocket(
            protocols=(protocol,) if protocol else (),
            # Pings come from the sweeper (one task for all sockets), not from aiohttp's per-socket
            # heartbeat, whose timer is touched on every received chunk and costs ~1 KB a socket.
            heartbeat=None,
            # aiohttp rejects a message whose size is >= max_msg_size; AWS allows exactly the limit.
            max_msg_size=settings.max_message_bytes + 1,
            compress=False,  # AWS negotiates no extensions; zlib contexts cost ~250 KB a socket
            autoclose=False,
            timeout=5.0,
        )
        await ws.prepare(request)
        core = ConnectionCore(settings, asyncio.get_running_loop().time())
        self._guard_frames(request, settings, core)
        transport = request.transport
        if transport is not None and hasattr(transport, "set_write_buffer_limits"):
            # Writers pause only above our own limit plus a few messages (see send_text).
            transport.set_write_buffer_limits(
                high=settings.send_buffer_bytes + 4 * settings.max_message_bytes
            )
        conn = LocalConnection(
            info=info,
            ws=ws,
            api=api,
            transport=transport,
            last_active_ms=info.connected_at_ms,
            core=core,
            plan=plan,
            throttled=self.throttle.applies(api, stage, plan),
        )
        await self.registry.register(conn)
        self._idle.clear()
        return conn

    def _guard_frames(self, request: web.Request, settings: WebSocketSettings, core: ConnectionCore) -> None:
        """Put the frame rules (frame size, masking, control-frame budget; connections/frames.py)
        in front of aiohttp's parser."""
        protocol = request.protocol
        inner = getattr(protocol, "_payload_parser", None)
        if inner is None:  # pragma: no cover - an aiohttp without this attribute: message limit only
            log.warning("frame rules unavailable with this aiohttp; the message limit still applies")
            return
        transport = request.transport
        protocol._payload_parser = FrameGuard(
            inner,
            core,
            max_frame_bytes=settings.max_frame_bytes,
            max_message_bytes=settings.max_message_bytes,
            clock=asyncio.get_running_loop().time,
            on_close=functools.partial(self._fail, core, transport),
        )

    def _fail(self, core: ConnectionCore, transport: asyncio.BaseTransport | None, close: Close) -> None:
        """Fail the connection (RFC 6455 §7.1.7): send the close frame, then close TCP at once,
        without waiting for the client's reply (it broke a rule; a flooder would keep sending).
        Called from the transport's data_received; the handler then reads EOF."""
        closed = core.decide(close)
        if close is CONTROL_FLOOD:
            self.control_flood_closes += 1
        # debug, not info: a flooder reconnecting in a loop would otherwise flood the log (the
        # metrics count these closes).
        log.debug("failing a connection: %d %s", closed.code, closed.reason)
        # uvloop's transports are not asyncio.WriteTransport subclasses: look the method up.
        write = getattr(transport, "write", None)
        if transport is not None and write is not None and not transport.is_closing():
            write(close_frame(closed))
            transport.close()  # flushes the close frame first

    async def _read(self, conn: LocalConnection, runtime: _ApiRuntime) -> None:
        """Read until the socket closes; the close (whoever decided it) is in ``conn.core``."""
        ws = conn.ws
        loop = asyncio.get_running_loop()
        while True:
            try:
                msg = await ws.receive()
            except ConnectionError:
                # aiohttp answers a queued ping after the transport closed (a failed connection,
                # or the client went away): the socket is gone, the close is in conn.core.
                return
            if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                body: str | bytes = msg.data
                refused = conn.core.message(loop.time(), binary=msg.type is WSMsgType.BINARY)
                if refused is not None:
                    await conn.close(*refused)
                    return
                conn.received += 1
            elif msg.type is WSMsgType.CLOSE:
                # autoclose is off so that the client's code and reason reach us before we answer.
                answer, close = client_close(int(msg.data or 0), msg.extra or "")
                conn.core.decide(close)
                await ws.close(code=answer)
                return
            elif msg.type is WSMsgType.ERROR:
                # aiohttp's parser failed the connection and sent the code (with the public reason:
                # _GatewaySocket.close); its own text (msg.data) stays in the log.
                log.debug("connection %s failed: %s", conn.id, msg.data)
                conn.core.decide(close_for_error(getattr(msg.data, "code", None)))
                return
            else:  # CLOSING (we closed it) or CLOSED (EOF: a failed connection, or TCP dropped)
                return
            conn.last_active_ms = int(time.time() * 1000)
            key = select_route(runtime.expression, body, runtime.route_keys)
            if key is None:
                await conn.send_text(error_frame("Forbidden", conn.id, new_message_id()))
                continue
            if conn.core.run_inline():
                await self._process(conn, runtime, key, body)
            else:
                conn.core.started()
                task = asyncio.create_task(self._process(conn, runtime, key, body))
                conn.tasks.add(task)
                task.add_done_callback(functools.partial(_task_done, conn))

    async def _process(
        self, conn: LocalConnection, runtime: _ApiRuntime, key: str, body: str | bytes
    ) -> None:
        request_id = new_message_id()
        now = time.time()
        if conn.throttled:
            stage = runtime.stages[conn.info.stage]
            if not await self.throttle.admit_message(conn, runtime.api, stage, key, request_id, now):
                return
        validator = runtime.validators.get(key)
        if validator is not None and not validator.valid(body):
            await conn.send_text(bad_body_frame(conn.id, new_message_id()))
            return
        event = message_event(
            conn.info,
            route_key=key,
            body=body,
            message_id=new_message_id(),
            request_id=request_id,
            now_ms=int(now * 1000),
        )
        integration = runtime.integrations.get(key)
        if integration is None:
            return
        try:
            result = await integration.invoke(event, request_id=request_id)
        except RouteIntegrationError:
            await conn.send_text(error_frame("Internal server error", conn.id, request_id))
            return
        if runtime.routes[key].route_response and result.body is not None:
            await conn.send_text(result.body)

    async def _disconnect(self, conn: LocalConnection, runtime: _ApiRuntime, code: int, reason: str) -> None:
        integration = runtime.integrations.get("$disconnect")
        if integration is None:
            return
        await self.run_disconnect(integration, conn.info, code, reason)

    async def run_disconnect(
        self, integration: RouteIntegration, info: ConnectionInfo, code: int, reason: str
    ) -> None:
        """Run ``$disconnect`` once (its failures are logged: the client is already gone)."""
        request_id = new_apigw_id()
        event = disconnect_event(
            info, status_code=code, reason=reason, request_id=request_id, now_ms=int(time.time() * 1000)
        )
        self.disconnects_run += 1
        try:
            await integration.invoke(event, request_id=request_id)
        except RouteIntegrationError as exc:
            log.warning("$disconnect of %s failed: %s", info.connection_id, exc)

    def disconnect_integration(self, api_id: str) -> RouteIntegration | None:
        runtime = self._apis.get(api_id)
        return runtime.integrations.get("$disconnect") if runtime else None

    # Timers and shutdown --------------------------------------------------------------------------

    def sweep_interval(self) -> float | None:
        """How often the sweeper must look: a quarter of the shortest timer, within [0.05, 5] s."""
        timers = [
            t
            for rt in self._apis.values()
            for t in (
                rt.api.websocket.idle_timeout_s,
                rt.api.websocket.max_lifetime_s,
                rt.api.websocket.ping_interval_s,
            )
            if t is not None
        ]
        return min(5.0, max(0.05, min(timers) / 4)) if timers else None

    async def sweep(self) -> int:
        """Run every connection's timers (connections/core.py: ping, or close past the idle or
        lifetime limit); returns how many were closed."""
        now = asyncio.get_running_loop().time()
        expired: list[tuple[LocalConnection, Close]] = []
        for conn in self.registry:
            action = conn.core.tick(now)
            if action == PING:
                if not conn.ws.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await conn.ws.ping()
            elif action is not None:
                expired.append((conn, action))
        await asyncio.gather(*(conn.close(*close) for conn, close in expired), return_exceptions=True)
        return len(expired)

    async def run_sweeper(self) -> None:
        interval = self.sweep_interval()
        if interval is None:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:  # the sweeper must outlive any single failure
                log.exception("connection sweep failed")

    async def shutdown(self, grace_s: float = 10.0) -> None:
        """Close every socket with 1001 and wait (bounded) for their ``$disconnect`` to run."""
        conns = list(self.registry)
        await asyncio.gather(*(c.close(*GOING_AWAY) for c in conns), return_exceptions=True)
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d connections still closing at shutdown", len(self.registry) + len(self._cleanups))


class _GatewaySocket(web.WebSocketResponse):
    """aiohttp's socket, except that a close aiohttp's parser decides (1002, 1007, 1009...) carries
    the public reason of its code instead of an empty one, so the client gets the same code and
    reason as ``$disconnect`` (connections/core.py)."""

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if not message:
            message = error_reason(code).encode()
        return await super().close(code=code, message=message, drain=drain)


def _refusal(error: GatewayError) -> web.Response:
    """A failed handshake rendered as REST renders the error (status, body, x-amzn-ErrorType,
    Retry-After for a throttle)."""
    rendered = render_error(error)
    return web.Response(status=rendered.status, body=rendered.body, headers=CIMultiDict(rendered.headers))


def _connection_info(
    request: web.Request,
    api: ApiConfig,
    stage: StageConfig,
    now: float,
    key_value: str | None,
    key: ApiKey | None,
    connection_id: str,
    auth: AuthResult | None,
) -> ConnectionInfo:
    """The new connection's identity (its id; the peer address; the API key it came with; what
    the ``$connect`` authorizer returned, kept for every later event of the connection)."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return ConnectionInfo(
        connection_id=connection_id,
        api_id=api.id,
        stage=stage.name,
        domain_name=request.host,
        source_ip=peer[0] if peer else "",
        connected_at_ms=int(now * 1000),
        user_agent=request.headers.get("User-Agent"),
        stage_variables=stage.variables,
        api_key=key_value if key is not None else None,
        api_key_id=key.id if key is not None else None,
        authorizer=auth.authorizer if auth is not None else None,
        identity_extra=auth.identity if auth is not None else None,
    )


def _task_done(conn: LocalConnection, task: asyncio.Task[None]) -> None:
    conn.core.finished()
    conn.tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("message processing failed on %s", conn.id, exc_info=task.exception())

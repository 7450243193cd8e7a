"""The WebSocket connection lifecycle: ``$connect`` -> messages -> ``$disconnect``.

Reference §1. One :class:`WebSocketGateway` per process serves every WebSocket API:

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

from connections.events import ConnectionInfo, connect_event, disconnect_event, error_frame, message_event
from connections.frames import FrameGuard
from connections.integration import RouteIntegration, RouteIntegrationError
from connections.registry import ConnectionRegistry, LocalConnection
from connections.throttle import FLOOD_CLOSE_CODE, FLOOD_CLOSE_REASON, WebSocketThrottle
from routes.dispatch import Dispatch
from routes.selection import SelectionExpression, compile_expression, select_route
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    RouteConfig,
    StageConfig,
    WebSocketSettings,
)
from server.errors import GatewayError
from server.ids import new_apigw_id, new_message_id
from server.keys.registry import KeyRegistry
from server.render import render_error
from server.throttle.admission import Admission
from server.validation import MessageValidator, bad_body_frame

__all__ = ["FLOOD_CLOSE_CODE", "FLOOD_CLOSE_REASON", "WebSocketGateway", "error_frame"]

log = logging.getLogger("portway.websocket")

_INTERNAL_ERROR = b'{"message": "Internal server error"}'


class _ApiRuntime:
    """Everything compiled once per WebSocket API."""

    __slots__ = (
        "api",
        "connect_key_required",
        "expression",
        "integrations",
        "route_keys",
        "routes",
        "stages",
        "validators",
    )

    def __init__(self, api: ApiConfig, integrations: Mapping[str, RouteIntegration]) -> None:
        self.api = api
        self.expression: SelectionExpression = compile_expression(api.route_selection_expression)
        self.routes: dict[str, RouteConfig] = {r.path: r for r in api.routes}
        self.integrations = integrations
        # Keys a message may select: custom routes and $default (never $connect/$disconnect).
        self.route_keys = frozenset(k for k in self.routes if not k.startswith("$") or k == "$default")
        self.stages: dict[str, StageConfig] = {s.name: s for s in api.stages}
        # apiKeyRequired counts on $connect only (reference §1.1): checked once per connection.
        connect = self.routes.get("$connect")
        self.connect_key_required = connect is not None and connect.api_key_required
        # Route models (docs/transform.md), compiled once; most routes have none.
        self.validators = {
            r.path: MessageValidator(r.validation, api.models) for r in api.routes if r.validation is not None
        }


class WebSocketGateway:
    """Every WebSocket API of the process; see the module docstring.

    ``keys``: the API key registry (None: every key check fails, 403). ``admission``: the store
    decision shared with HTTP (the throttle stage's, so its counters cover both); None switches
    throttling off. Counter: ``flood_closes``, connections closed by the flood policy.
    """

    def __init__(
        self,
        config: GatewayConfig,
        registry: ConnectionRegistry,
        integrations: Mapping[str, Mapping[str, RouteIntegration]],
        *,
        keys: KeyRegistry | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.registry = registry
        self.throttle = WebSocketThrottle(config, keys, admission)
        self._apis = {
            api.id: _ApiRuntime(api, integrations.get(api.id, {}))
            for api in config.apis
            if api.kind is ApiKind.WEBSOCKET
        }
        self._cleanups: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()  # set when no socket is open and no $disconnect is running
        self._idle.set()
        self.disconnects_run = 0

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
        runtime = self._apis[dispatch.api.id]
        api = runtime.api
        stage = dispatch.stage
        settings = api.websocket
        loop = asyncio.get_running_loop()
        now = time.time()
        now_ms = int(now * 1000)
        try:
            key_value, key, plan = await self.throttle.admit_connect(
                api, stage, request.headers, now, key_required=runtime.connect_key_required
            )
        except GatewayError as exc:  # InvalidApiKey, Throttled, QuotaExceeded
            return _refusal(exc)
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        info = ConnectionInfo(
            connection_id=new_apigw_id(),
            api_id=api.id,
            stage=dispatch.stage.name,
            domain_name=request.host,
            source_ip=peer[0] if peer else "",
            connected_at_ms=now_ms,
            user_agent=request.headers.get("User-Agent"),
            stage_variables=stage.variables,
            api_key=key_value if key is not None else None,
            api_key_id=key.id if key is not None else None,
        )
        protocol: str | None = None
        connect = runtime.integrations.get("$connect")
        if connect is not None:
            request_id = new_apigw_id()
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
            query = request.raw_path.partition("?")[2]
            event = connect_event(
                info, headers=headers, query_string=query, request_id=request_id, now_ms=now_ms
            )
            try:
                result = await connect.invoke(event, request_id=request_id)
            except RouteIntegrationError:
                return web.Response(status=502, body=_INTERNAL_ERROR, content_type="application/json")
            if not 200 <= result.status < 300:
                return web.Response(status=result.status, text=result.body or "")
            protocol = next(
                (v for k, v in result.headers.items() if k.lower() == "sec-websocket-protocol"), None
            )

        ws = web.WebSocketResponse(
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
        self._guard_frames(request, settings)
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
            transport=request.transport,
            opened_at=loop.time(),
            last_active=loop.time(),
            last_ping=loop.time(),
            last_active_ms=now_ms,
            plan=plan,
            throttled=self.throttle.applies(api, stage, plan),
        )
        await self.registry.register(conn)
        self._idle.clear()
        outcome: tuple[int, str] | None = None
        try:
            outcome = await self._read(conn, runtime)
        finally:
            # aiohttp cancels this handler when the client's TCP connection goes away, so the
            # close bookkeeping and $disconnect run in their own task that nothing cancels.
            if conn.close_code is not None:
                code, reason = conn.close_code, conn.close_reason
            elif outcome is not None:
                code, reason = outcome
            elif ws.close_code not in (None, 1000) or conn.ws.closed:
                code, reason = (ws.close_code or 1006), ""
            else:
                code, reason = 1006, "Connection closed abnormally"
            cleanup = asyncio.create_task(self._finish(conn, runtime, code, reason))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanup_done)
            await asyncio.shield(cleanup)
        return ws

    @staticmethod
    def _guard_frames(request: web.Request, settings: WebSocketSettings) -> None:
        """Add AWS's per-frame limit in front of aiohttp's parser (see connections/frames.py)."""
        if settings.max_frame_bytes >= settings.max_message_bytes:
            return
        protocol = request.protocol
        inner = getattr(protocol, "_payload_parser", None)
        if inner is None:  # pragma: no cover - an aiohttp without this attribute: message limit only
            log.warning("frame size limit unavailable with this aiohttp; the message limit still applies")
            return
        protocol._payload_parser = FrameGuard(
            inner, max_frame_bytes=settings.max_frame_bytes, message_limit=settings.max_message_bytes + 1
        )

    async def _read(self, conn: LocalConnection, runtime: _ApiRuntime) -> tuple[int, str]:
        ws = conn.ws
        settings = runtime.api.websocket
        loop = asyncio.get_running_loop()
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                body: str | bytes = msg.data
            elif msg.type is WSMsgType.BINARY:
                if not settings.binary_frames:
                    await conn.close(1003, "Binary frames are not supported")
                    return 1003, "Binary frames are not supported"
                body = msg.data
            elif msg.type is WSMsgType.CLOSE:
                # autoclose is off so that the client's code and reason reach us before we answer.
                code = int(msg.data or 0)
                outcome = (
                    (1005, "Client-side close frame status not set")
                    if code in (0, 1005)
                    else (code, msg.extra or "")
                )
                await ws.close(code=code if 1000 <= code < 5000 and code not in (1005, 1006) else 1000)
                return outcome
            elif msg.type is WSMsgType.ERROR:
                code = ws.close_code or 1006
                return code, "Message too big" if code == 1009 else str(msg.data)
            else:  # CLOSING (we closed it) or CLOSED (EOF without a close frame)
                return (conn.close_code or 1006), (conn.close_reason or "Connection closed abnormally")
            conn.last_active = loop.time()
            conn.last_active_ms = int(time.time() * 1000)
            key = select_route(runtime.expression, body, runtime.route_keys)
            if key is None:
                await conn.send_text(error_frame("Forbidden", conn.id, new_message_id()))
                continue
            if conn.inflight + 1 >= settings.max_inflight:
                # In order, one at a time by default; beyond maxInflight reading pauses meanwhile
                # (backpressure, not buffering).
                await self._process(conn, runtime, key, body)
            else:
                conn.inflight += 1
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
        """Close connections past their idle or lifetime limit; returns how many were closed."""
        now = asyncio.get_running_loop().time()
        expired: list[tuple[LocalConnection, str]] = []
        for conn in self.registry:
            settings = conn.settings
            if settings.max_lifetime_s is not None and now - conn.opened_at >= settings.max_lifetime_s:
                expired.append((conn, "Connection maximum duration exceeded"))
            elif settings.idle_timeout_s is not None and now - conn.last_active >= settings.idle_timeout_s:
                expired.append((conn, "Connection idle timeout exceeded"))
            elif settings.ping_interval_s is not None and now - conn.last_ping >= settings.ping_interval_s:
                conn.last_ping = now
                if not conn.ws.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await conn.ws.ping()
        await asyncio.gather(*(conn.close(1001, reason) for conn, reason in expired), return_exceptions=True)
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
        await asyncio.gather(*(c.close(1001, "Going away") for c in conns), return_exceptions=True)
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d connections still closing at shutdown", len(self.registry) + len(self._cleanups))


def _refusal(error: GatewayError) -> web.Response:
    """A failed handshake rendered as REST renders the error (status, body, x-amzn-ErrorType,
    Retry-After for a throttle)."""
    rendered = render_error(error)
    return web.Response(status=rendered.status, body=rendered.body, headers=CIMultiDict(rendered.headers))


def _task_done(conn: LocalConnection, task: asyncio.Task[None]) -> None:
    conn.inflight -= 1
    conn.tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("message processing failed on %s", conn.id, exc_info=task.exception())

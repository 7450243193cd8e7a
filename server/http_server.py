"""The HTTP listener's protocol: read deadlines, parser refusals in the gateway's shape, fd limit.

aiohttp's server protocol (``RequestHandler``) has a keep-alive timer but no deadline for a
request's head: a client sending half a request line held its connection (and file descriptor)
until the keep-alive timer fired, an hour by default. :class:`GatewayProtocol` adds that deadline
and renders the parser's refusals (bad framing, oversized headers) as the gateway's own JSON error
with one short, rate-limited log line instead of aiohttp's plain text and ERROR traceback.
:class:`GatewayRunner` is ``web.AppRunner`` serving connections with that protocol; the CLI uses
it, and so do the tests that need real deadlines. The body deadline is the request adapter's
(:func:`server.app.handle_request` reads bodies itself, after routing).

This module leans on a few ``RequestHandler`` internals (``_messages``, ``_request_in_progress``,
``_upgraded``), checked by tests/server/test_client_limits.py on every aiohttp upgrade.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from multidict import CIMultiDict

from server.errors import ApiConfigurationError, GatewayError, HeadersTooLarge, MalformedRequest
from server.ids import new_apigw_id, new_request_uuid
from server.limits import DEFAULT_LIMITS, LogGate, ServerLimits
from server.messages import HttpResponse
from server.render import add_request_headers, render_error

__all__ = ["GatewayProtocol", "GatewayRunner", "GatewayServer", "BareResponse", "raise_fd_limit", "to_web"]

log = logging.getLogger("portway.http")

# Client errors: a few lines per window, then a count (2,000 bad requests used to write 1 MB).
_client_errors = LogGate(burst=10, window_s=10.0)
# "Connections near the fd limit": once a minute at most.
_fd_warnings = LogGate(burst=1, window_s=60.0)
_FD_WARN_RATIO = 0.8


class BareResponse(web.Response):
    """A response without aiohttp's ``Server`` header (AWS sends none). aiohttp adds it with
    ``setdefault`` after the app's ``on_response_prepare`` hooks would have run for normal
    requests, and runs none for its own parser-error responses, so it is dropped here."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall("Server", None)


def to_web(response: HttpResponse) -> web.Response:
    return BareResponse(status=response.status, body=response.body, headers=CIMultiDict(response.headers))


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit (each connection is a descriptor: 1,005
    idle connections exhausted the common 1,024 default); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # e.g. a container's seccomp policy
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
    return soft


def _client_error(error: GatewayError) -> HttpResponse:
    response = render_error(error)
    add_request_headers(
        response, request_id=new_request_uuid(), extended_request_id=new_apigw_id(), http_api=False
    )
    return response


def _short(exc: BaseException | None) -> str:
    """First line of a parser message, bounded: no internals, no multi-line caret drawings."""
    text = str(getattr(exc, "message", "") or exc or "").strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


class GatewayProtocol(RequestHandler):
    """``RequestHandler`` plus a header deadline and the gateway's own parser-error responses."""

    __slots__ = ("_limits", "_head_timer", "_head_started")

    def __init__(
        self, manager: web.Server, *, loop: asyncio.AbstractEventLoop, limits: ServerLimits, **kw: Any
    ) -> None:
        kw["keepalive_timeout"] = limits.keepalive_timeout_s
        kw["max_line_size"] = limits.max_field_bytes
        kw["max_field_size"] = limits.max_field_bytes
        # After an answer given before the body was read (403/404/413/408), aiohttp reads and
        # discards what still arrives so the client sees the answer, not a reset: no longer than
        # a body may take.
        kw["lingering_time"] = min(10.0, limits.body_timeout_s)
        super().__init__(manager, loop=loop, **kw)
        self._limits = limits
        self._head_timer: asyncio.TimerHandle | None = None
        # loop.time() when the request head now being received started; None between heads.
        self._head_started: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # A connection that never sends a byte is held to the header deadline too.
        self._start_head()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Bytes arriving while no request is being handled start a request head. (Hot path: a
        # timestamp per request; the one timer per connection is re-armed lazily when it fires,
        # not scheduled and cancelled for every request.)
        if (
            self._head_started is None
            and not self._request_in_progress
            and not self._messages
            and not self._upgraded
        ):
            self._start_head()
        super().data_received(data)
        if self._head_started is not None and (self._messages or self._upgraded):
            self._head_started = None  # the head is complete

    def _start_head(self) -> None:
        timeout = self._limits.header_timeout_s
        if timeout <= 0:
            return
        self._head_started = now = self._loop.time()
        if self._head_timer is None:
            self._head_timer = self._loop.call_at(now + timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        started = self._head_started
        if started is None or self._messages or self._request_in_progress or self._upgraded:
            return  # no head being received: the next one arms the timer again
        deadline = started + self._limits.header_timeout_s
        if self._loop.time() < deadline:  # a later head than the one the timer was set for
            self._head_timer = self._loop.call_at(deadline, self._head_expired)
            return
        # No answer: a client that cannot finish its headers in time will not read one either.
        self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Parser refusals (4xx): the gateway's JSON shape and one short rate-limited log line.
        Handler failures (5xx): logged with their traceback, answered as AWS's internal error."""
        if status >= 500:
            if status == 500:
                log.error("unexpected error handling a request from %s", request.remote, exc_info=exc)
            error: GatewayError = ApiConfigurationError()
        else:
            # aiohttp signals an oversized request line or header line with LineTooLong.
            error = HeadersTooLarge() if isinstance(exc, LineTooLong) else MalformedRequest()
            if _client_errors.allow(time.monotonic()):
                suppressed = _client_errors.take_suppressed()
                log.info(
                    "refused a malformed request from %s: %d %s%s",
                    request.remote,
                    error.status,
                    _short(exc) if exc is not None else (message or "")[:120],
                    f" ({suppressed} more not logged)" if suppressed else "",
                )
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error response")
        response = to_web(_client_error(error))
        response.force_close()
        return response


class GatewayServer(web.Server):
    """``web.Server`` creating :class:`GatewayProtocol` connections and watching the fd limit."""

    def __init__(self, *args: Any, limits: ServerLimits, fd_limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._fd_limit = fd_limit

    def __call__(self) -> RequestHandler:
        return GatewayProtocol(self, loop=self._loop, limits=self._limits, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        count = len(self._connections)
        if count >= self._fd_limit * _FD_WARN_RATIO and _fd_warnings.allow(time.monotonic()):
            log.warning(
                "%d client connections open, near the open-files limit %d: new connections and "
                "backend calls will fail at the limit (raise `ulimit -n`, or add nodes)",
                count,
                self._fd_limit,
            )


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are :class:`GatewayProtocol` with ``limits``."""

    def __init__(
        self, app: web.Application, *, limits: ServerLimits = DEFAULT_LIMITS, fd_limit: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits
        self._fd_limit = fd_limit or resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()
        # Same handler, request factory and handler arguments as aiohttp's own server.
        return GatewayServer(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=asyncio.get_running_loop(),
            limits=self._limits,
            fd_limit=self._fd_limit,
            **base._kwargs,
        )

"""The console's access lines: one per request and per WebSocket event (``portway serve``; off
with ``--quiet``).

    2026-12-04T16:00:00.123Z GET /dev/todos 200 3.4 ms todos-dev-list
    2026-12-04T16:00:00.456Z WS $connect /dev 200 1.2 ms chat-dev-connect

Cheap on purpose (requests are benchmarked): a line is one f-string appended to a buffer, and
the buffer is written once per event-loop iteration, however many requests finished in it
(a ``logging`` call per line measured ~10 µs, this ~0.4 µs). The timestamp text is rebuilt once
per second.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from connections.integration import ProxyResult, RouteIntegration
from server.access_format import AccessFormat
from server.access_values import request_values, websocket_values
from server.messages import HttpResponse

if TYPE_CHECKING:
    from server.pipeline import RequestContext

__all__ = ["AccessLog", "LoggedRouteIntegration"]


class AccessLog:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.time,
        line_format: AccessFormat | None = None,
    ) -> None:
        self._stream = stream
        self.format = line_format  # AWS's accessLogSettings.format: REST/HTTP lines use it instead
        # Per API id: the APIs' own accessLog.format (set by create_app from the config).
        self.api_formats: dict[str, AccessFormat] = {}
        self._clock = clock
        self._lines: list[str] = []
        self._second = -1
        self._prefix = ""

    def line(self, method: str, path: str, status: int, latency_ms: float, function: str) -> None:
        now = self._clock()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        millis = int((now - second) * 1000)
        self.append(f"{self._prefix}.{millis:03d}Z {method} {path} {status} {latency_ms:.1f} ms {function}")

    def record(self, ctx: RequestContext, response: HttpResponse, latency_ms: float) -> None:
        """One request's line in its API's format, else :attr:`format`, else the console line."""
        line_format = self.format
        if self.api_formats and ctx.dispatch is not None:
            line_format = self.api_formats.get(ctx.dispatch.api.id, line_format)
        if line_format is not None:
            self.append(line_format.render(request_values(ctx, response, latency_ms)))
            return
        target = "-"
        if ctx.match is not None:
            integration = ctx.match.route.integration
            target = integration.function_name or integration.type.value
        request = ctx.request
        self.line(request.method, request.raw_path, response.status, latency_ms, target)

    def append(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a synchronous caller): write now
                self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            stream = self._stream or sys.stderr  # looked up late: tests and the CLI redirect it
            stream.write("\n".join(lines) + "\n")
            stream.flush()


class LoggedRouteIntegration:
    """A WebSocket route's integration, with one access line per event it handles."""

    def __init__(
        self,
        inner: RouteIntegration,
        access: AccessLog,
        route_key: str,
        path: str,
        function: str,
        line_format: AccessFormat | None = None,
    ) -> None:
        self._line_format = line_format  # the API's (or the gateway's) AWS format, else the console line
        self._inner = inner
        self._access = access
        self._route_key = route_key
        self._path = path
        self._function = function

    async def invoke(self, event: dict[str, Any], *, request_id: str) -> ProxyResult:
        started = time.perf_counter()
        status = 502
        try:
            result = await self._inner.invoke(event, request_id=request_id)
            status = result.status
            return result
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            if self._line_format is not None:
                self._access.append(self._line_format.render(websocket_values(event, status, elapsed)))
            else:
                self._access.line("WS", f"{self._route_key} {self._path}", status, elapsed, self._function)

"""Client frame rules applied before aiohttp parses a byte (aws-contract.md §1.5, RFC 6455).

aiohttp enforces one limit, on whole (reassembled) messages, accepts unmasked client frames and
answers every ping inside its reader. :class:`FrameScanner` is a pure, incremental reader of RFC
6455 frame headers in a byte stream cut at arbitrary points (holding back an incomplete header
until it is whole) that asks the connection's core (:class:`connections.core.ConnectionCore`)
about each header: a frame over 32 KB (AWS closes with 1009 even inside the 128 KB message limit),
an unmasked frame (1002), a ping or pong beyond the control-frame budget (1008).
:class:`FrameGuard` sits in front of aiohttp's frame parser; at the first frame the core refuses it
hands aiohttp nothing more of the stream and reports the close (the adapter fails the connection:
close frame, then TCP close, RFC 6455 §7.1.7), so nothing of that frame is buffered or parsed.

``FrameScanner`` is pure core: it imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from connections.core import Close, ConnectionCore
from server.config.model import WebSocketSettings

__all__ = ["FrameGuard", "FrameScanner"]

_NO_CONTROL_BUDGET = WebSocketSettings(control_frame_throttle=None)  # a scanner without a core


class FrameScanner:
    """Walks RFC 6455 frame headers in a client byte stream cut at arbitrary points.

    Only one number survives between calls: how many payload bytes of the current frame are still
    to come. :meth:`scan` returns ``(safe, close)``: the bytes ``buf[:safe]`` may be handed to the
    frame parser; if ``close`` is not None, the frame whose header starts at ``safe`` broke a rule
    and the connection must close with it; otherwise ``buf[safe:]`` is an incomplete header to hold
    back and prepend to the next chunk.
    """

    __slots__ = ("_core", "_max", "_max_message", "remaining")

    def __init__(
        self, max_frame_bytes: int, core: ConnectionCore | None = None, *, max_message_bytes: int = 0
    ) -> None:
        self._max = min(max_frame_bytes, max_message_bytes) if max_message_bytes else max_frame_bytes
        self._max_message = max_message_bytes
        self._core = core if core is not None else ConnectionCore(_NO_CONTROL_BUDGET)
        self.remaining = 0

    def scan(self, buf: bytes, now: float = 0.0) -> tuple[int, Close | None]:
        pos, n = 0, len(buf)
        core = self._core
        while pos < n:
            if self.remaining:
                step = min(self.remaining, n - pos)
                pos += step
                self.remaining -= step
                continue
            if n - pos < 2:
                return pos, None
            second = buf[pos + 1]
            length7 = second & 0x7F
            ext = 2 if length7 == 126 else 8 if length7 == 127 else 0
            masked = bool(second & 0x80)
            header = 2 + ext + (4 if masked else 0)
            if n - pos < header:
                return pos, None
            length = int.from_bytes(buf[pos + 2 : pos + 2 + ext], "big") if ext else length7
            close = core.frame_header(buf[pos] & 0x0F, masked, length, self._max, now, self._max_message)
            if close is not None:
                return pos, close
            pos += header
            self.remaining = length
        return pos, None


class _Parser(Protocol):
    def feed_data(self, data: bytes) -> Any: ...

    def feed_eof(self) -> Any: ...


class FrameGuard:
    """Wraps aiohttp's WebSocket frame parser (``protocol._payload_parser``) to apply the frame
    rules (module docstring). ``on_close`` is called once, with the close the core decided, from
    inside the transport's ``data_received``; from then on the rest of the stream is dropped.
    ``clock``: the ``now`` the core's budgets use (the event loop's time)."""

    def __init__(
        self,
        inner: _Parser,
        core: ConnectionCore,
        *,
        max_frame_bytes: int,
        max_message_bytes: int,
        clock: Callable[[], float],
        on_close: Callable[[Close], None],
    ) -> None:
        self._inner = inner
        self._scanner = FrameScanner(max_frame_bytes, core, max_message_bytes=max_message_bytes)
        self._max_frame = min(max_frame_bytes, max_message_bytes)
        self._clock = clock
        self._on_close = on_close
        self._held = b""
        self._failed = False

    def feed_data(self, data: bytes) -> Any:
        if self._failed:
            return False, b""
        if not self._held and not self._scanner.remaining and len(data) >= 6:
            # Fast path: the chunk is exactly one small masked data frame (the common case for
            # chat traffic). Control frames always go through the scanner (their budget).
            first, second = data[0], data[1]
            length = second & 0x7F
            if (
                first & 0x08 == 0
                and second & 0x80
                and length < 126
                and length <= self._max_frame
                and 6 + length == len(data)
            ):
                return self._inner.feed_data(data)
        if self._held:
            data, self._held = self._held + data, b""
        safe, close = self._scanner.scan(data, self._clock())
        if close is not None:
            self._failed = True
            if safe:
                self._inner.feed_data(data[:safe])
            self._on_close(close)
            return False, b""
        self._held = data[safe:]
        if safe == len(data):
            return self._inner.feed_data(data)
        return self._inner.feed_data(data[:safe]) if safe else (False, b"")

    def feed_eof(self) -> Any:
        return self._inner.feed_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

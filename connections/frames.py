"""Per-frame size limit (AWS: 32 KB per frame, 128 KB per message; aws-contract.md §1.5).

aiohttp enforces one limit, on whole (reassembled) messages. AWS also closes a connection whose
client sends a single *frame* over 32 KB, even inside the 128 KB message limit. :class:`FrameScanner`
is a pure, incremental reader of RFC 6455 frame headers that finds the first oversized frame in a
byte stream cut at arbitrary points (holding back an incomplete header until it is whole);
:class:`FrameGuard` sits in front of aiohttp's frame parser and,
at the start of an oversized frame, hands it a header announcing a payload over the message limit
instead, so aiohttp itself fails the connection with 1009 and nothing of that frame is buffered.

``FrameScanner`` is pure core: it imports no I/O library.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["FrameGuard", "FrameScanner", "oversized_frame_header"]


class FrameScanner:
    """Walks RFC 6455 frame headers in a client byte stream cut at arbitrary points.

    Only one number survives between calls: how many payload bytes of the current frame are still
    to come. :meth:`scan` returns ``(safe, tripped)``: the bytes ``buf[:safe]`` may be handed to the
    frame parser; if ``tripped``, an oversized frame's header starts at ``safe``; otherwise
    ``buf[safe:]`` is an incomplete header to hold back and prepend to the next chunk.
    """

    __slots__ = ("_max", "remaining")

    def __init__(self, max_frame_bytes: int) -> None:
        self._max = max_frame_bytes
        self.remaining = 0

    def scan(self, buf: bytes) -> tuple[int, bool]:
        pos, n = 0, len(buf)
        while pos < n:
            if self.remaining:
                step = min(self.remaining, n - pos)
                pos += step
                self.remaining -= step
                continue
            if n - pos < 2:
                return pos, False
            length7 = buf[pos + 1] & 0x7F
            ext = 2 if length7 == 126 else 8 if length7 == 127 else 0
            header = 2 + ext + (4 if buf[pos + 1] & 0x80 else 0)
            if n - pos < header:
                return pos, False
            length = int.from_bytes(buf[pos + 2 : pos + 2 + ext], "big") if ext else length7
            if length > self._max:
                return pos, True
            pos += header
            self.remaining = length
        return pos, False


def oversized_frame_header(length: int) -> bytes:
    """A masked text-frame header announcing ``length`` payload bytes (64-bit length form)."""
    return bytes([0x81, 0x80 | 127]) + length.to_bytes(8, "big") + b"\x00\x00\x00\x00"


class _Parser(Protocol):
    def feed_data(self, data: bytes) -> Any: ...

    def feed_eof(self) -> Any: ...


class FrameGuard:
    """Wraps aiohttp's WebSocket frame parser (``protocol._payload_parser``) to add the frame limit.

    ``message_limit`` is the parser's ``max_msg_size``: the substitute header announces more than
    that, which aiohttp rejects with close code 1009 (MESSAGE_TOO_BIG) before reading any payload.
    """

    def __init__(self, inner: _Parser, *, max_frame_bytes: int, message_limit: int) -> None:
        self._inner = inner
        self._scanner = FrameScanner(max_frame_bytes)
        self._max_frame = max_frame_bytes
        self._trip = oversized_frame_header(message_limit + 1)
        self._held = b""
        self._tripped = False

    def feed_data(self, data: bytes) -> Any:
        if self._tripped:
            return False, b""
        if not self._held and not self._scanner.remaining and len(data) >= 2:
            # Fast path: the chunk is exactly one small frame (the common case for chat traffic).
            second = data[1]
            length = second & 0x7F
            if (
                length < 126
                and length <= self._max_frame
                and 2 + (4 if second & 0x80 else 0) + length == len(data)
            ):
                return self._inner.feed_data(data)
        if self._held:
            data, self._held = self._held + data, b""
        safe, tripped = self._scanner.scan(data)
        if tripped:
            self._tripped = True
            if safe:
                self._inner.feed_data(data[:safe])
            return self._inner.feed_data(self._trip)
        self._held = data[safe:]
        if safe == len(data):
            return self._inner.feed_data(data)
        return self._inner.feed_data(data[:safe]) if safe else (False, b"")

    def feed_eof(self) -> Any:
        return self._inner.feed_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

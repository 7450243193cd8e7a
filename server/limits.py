"""What a client may hold of the gateway: read deadlines, header size, body bytes in flight.

Values and arithmetic only (the aiohttp side is :mod:`server.http_server`); pure core, no I/O
imports. The defaults and the reasons for them are in docs/operations.md, "Client limits".
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "BodyBudget", "LogGate", "ServerLimits", "request_head_size"]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Per-listener bounds (CLI: ``--header-timeout``, ``--body-timeout``, ``--keepalive-timeout``,
    ``--max-header-bytes``, ``--max-body-bytes-in-flight``).

    Attributes:
        header_timeout_s: from a connection's start, or the first byte of a request after the
            previous response, until its request line and headers are complete.
        body_timeout_s: from the end of the headers until the whole body has been read.
        keepalive_timeout_s: how long an idle keep-alive connection stays open.
        max_header_bytes: request line plus header values, as AWS counts them (10,240 bytes).
        max_body_bytes_in_flight: bytes of request bodies held in memory at once, all requests
            of the process together; a body that would go over is refused with 503.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 60.0
    max_header_bytes: int = 10_240
    max_body_bytes_in_flight: int = 256 * 1024 * 1024

    @property
    def max_field_bytes(self) -> int:
        """What aiohttp's parser may buffer for one header line or the request line: the whole
        allowance (names are not counted by AWS, so one line may carry it all) plus a name."""
        return self.max_header_bytes + 256


DEFAULT_LIMITS = ServerLimits()


def request_head_size(method: str, raw_target: str, header_values: Iterable[Sized]) -> int:
    """AWS's measure: "total combined size of request line and header values" (values as bytes,
    or latin-1 strings: one character per byte). The request line is ``METHOD target HTTP/x.y``."""
    return len(method) + 1 + len(raw_target) + 9 + sum(map(len, header_values))


class BodyBudget:
    """Bytes of request bodies held by in-flight requests, with a process-wide ceiling.

    Single-threaded use (the event loop); ``take`` either reserves all of ``size`` or nothing.
    """

    __slots__ = ("capacity", "used")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.capacity:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used = max(0, self.used - size)


class LogGate:
    """At most ``burst`` log lines per ``window_s``; counts what it held back, so the next line
    allowed can say how many were suppressed (a flood of bad requests writes a few lines, not MBs)."""

    __slots__ = ("_burst", "_window_s", "_window_start", "_count", "suppressed")

    def __init__(self, *, burst: int = 10, window_s: float = 10.0) -> None:
        self._burst = burst
        self._window_s = window_s
        self._window_start = float("-inf")
        self._count = 0
        self.suppressed = 0

    def allow(self, now: float) -> bool:
        if now - self._window_start >= self._window_s:
            self._window_start = now
            self._count = 0
        if self._count < self._burst:
            self._count += 1
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count

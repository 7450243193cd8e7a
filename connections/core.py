"""The rules of one WebSocket connection, without I/O (sans-I/O, as python-websockets' protocol).

The aiohttp adapter (:mod:`connections.websocket`, :class:`connections.frames.FrameGuard`) feeds
events in (a frame header, a parser error, the client's close frame, the clock) and performs what
comes back: a :class:`Close` to send. Everything here is decided from its arguments; ``now`` is
passed in (seconds, any monotonic clock).

What it holds per connection: the close decided, the control-frame bucket, the timers' marks
(opened, last client message, last server ping: :meth:`ConnectionCore.tick` says when to ping or
close for idleness or age), and the in-flight message count (:meth:`ConnectionCore.run_inline`:
in order by default, beyond ``max_inflight`` reading pauses).

**The close the client gets is the close** ``$disconnect`` **reports**: one :class:`Close` per
connection, the first one decided (:meth:`ConnectionCore.decide`), whoever decides it (a frame
rule, aiohttp's parser, a timer, ``DeleteConnection``, the client). aiohttp's internal error texts
(``Message size 131074 exceeds limit 131073``) never reach the client or ``$disconnect``: each
error code has one public reason (:func:`close_for_error`).

Frame rules (RFC 6455 and AWS, applied to each client frame header before aiohttp parses it):

* a frame without the mask bit: 1002 (RFC 6455 §5.1: the server MUST close);
* a data frame over ``max_frame_bytes``: 1009 (AWS: 32 KB per frame);
* ping and pong frames take a token from the connection's control-frame bucket
  (``control_frame_throttle``); an empty bucket: 1008. aiohttp answers pings inside its reader,
  so without this a ping flood costs the event loop (and every neighbour) unbounded work.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Literal, NamedTuple

from server.config.model import WebSocketSettings
from server.store.bucket import BucketState, take_tokens

__all__ = [
    "ABNORMAL",
    "BINARY_REFUSED",
    "CONTROL_FLOOD",
    "DELETED",
    "GOING_AWAY",
    "IDLE",
    "LIFETIME",
    "MESSAGE_FLOOD",
    "PING",
    "FRAME_TOO_BIG",
    "MESSAGE_TOO_BIG",
    "NO_STATUS",
    "UNMASKED",
    "Close",
    "ConnectionCore",
    "client_close",
    "close_for_error",
    "close_frame",
    "error_reason",
]


class Close(NamedTuple):
    """A close frame's code and reason: what the client gets and what ``$disconnect`` reports."""

    code: int
    reason: str


UNMASKED = Close(1002, "Client frames must be masked")
FRAME_TOO_BIG = Close(1009, "Frame too big")
MESSAGE_TOO_BIG = Close(1009, "Message too big")
CONTROL_FLOOD = Close(1008, "Control frame rate limit exceeded")
MESSAGE_FLOOD = Close(1008, "Message rate limit exceeded")  # the flood policy (floodRefusals)
NO_STATUS = Close(1005, "Client-side close frame status not set")  # AWS's text (aws-contract.md §1.6)
ABNORMAL = Close(1006, "Connection closed abnormally")
BINARY_REFUSED = Close(1003, "Binary frames are not supported")  # AWS closes on binary frames
IDLE = Close(1001, "Connection idle timeout exceeded")
LIFETIME = Close(1001, "Connection maximum duration exceeded")
GOING_AWAY = Close(1001, "Going away")  # shutdown
DELETED = Close(1000, "Connection deleted")  # DeleteConnection

PING: Final = "ping"
"""What :meth:`ConnectionCore.tick` returns when the server should ping the client."""

# The public reason of each close code aiohttp's parser fails a connection with.
_ERROR_REASONS = {
    1002: "Protocol error",
    1003: "Unsupported data",
    1007: "Invalid frame payload data",
    1008: "Policy violation",
    1009: MESSAGE_TOO_BIG.reason,
    1011: "Internal error",
}


def close_for_error(code: int | None) -> Close:
    """The close for a parser error with ``code`` (aiohttp's ``WebSocketError.code``); its text
    is replaced by a public one. No code (not a protocol error): 1006."""
    if code is None or code not in _ERROR_REASONS:
        return ABNORMAL
    return Close(code, _ERROR_REASONS[code])


def error_reason(code: int) -> str:
    """The public reason sent with a close ``code`` the parser chose ("" for other codes)."""
    return _ERROR_REASONS.get(code, "")


def client_close(code: int, reason: str) -> tuple[int, Close]:
    """The client's close frame (``code`` 0: none in it): the code to answer with, and the close
    ``$disconnect`` reports (AWS: 1005 with its text when the frame carries no code)."""
    if code in (0, 1005):
        return 1000, NO_STATUS
    answer = code if 1000 <= code < 5000 and code not in (1005, 1006) else 1000
    return answer, Close(code, reason)


def close_frame(close: Close) -> bytes:
    """A server close frame (unmasked) carrying ``close``; the reason is cut to fit 125 bytes."""
    payload = close.code.to_bytes(2, "big") + close.reason.encode()[:123]
    return bytes([0x88, len(payload)]) + payload


class ConnectionCore:
    """One connection's state and rules (module docstring); ``now``: when it opened."""

    __slots__ = (
        "_control_state",
        "_refusals",
        "closed",
        "inflight",
        "last_active",
        "last_ping",
        "opened_at",
        "settings",
    )

    def __init__(self, settings: WebSocketSettings, now: float = 0.0) -> None:
        self.settings = settings
        self._control_state: BucketState | None = None
        self.closed: Close | None = None
        """The close decided for this connection (the first one), or None while open."""
        self.opened_at = self.last_active = self.last_ping = now
        self.inflight = 0  # messages running in their own task
        # Times of recent throttle refusals (the flood policy's sliding window); allocated on
        # the first refusal only (idle connections stay small).
        self._refusals: deque[float] | None = None

    # -- messages ---------------------------------------------------------------------------

    def message(self, now: float, *, binary: bool) -> Close | None:
        """A data message arrived: it counts as activity; None to route it, or the close (a
        binary message where binary frames are refused)."""
        self.last_active = now
        if binary and not self.settings.binary_frames:
            return self.decide(BINARY_REFUSED)
        return None

    def run_inline(self) -> bool:
        """Whether the next message runs inline (reading waits for it: in order with the
        default ``max_inflight`` 1, and backpressure once ``max_inflight`` are running) or in
        its own task (then call :meth:`started` and, when it ends, :meth:`finished`)."""
        return self.inflight + 1 >= self.settings.max_inflight

    def started(self) -> None:
        self.inflight += 1

    def finished(self) -> None:
        self.inflight -= 1

    def refused(self, now: float) -> Close | None:
        """A message was refused by throttling or a quota (not by a store outage): the flood
        close once ``flood_refusals`` refusals fall within ``flood_window_s``, else None."""
        limit = self.settings.flood_refusals
        if limit is None:
            return None
        limit = max(1, limit)
        refusals = self._refusals
        if refusals is None or refusals.maxlen != limit:
            refusals = self._refusals = deque(maxlen=limit)
        refusals.append(now)
        if len(refusals) >= limit and now - refusals[0] <= self.settings.flood_window_s:
            return MESSAGE_FLOOD
        return None

    # -- timers -----------------------------------------------------------------------------

    def tick(self, now: float) -> Close | Literal["ping"] | None:
        """The timers at ``now``: the close for a connection past its age or idle limit, PING
        when a server ping is due (recorded as sent), else None."""
        settings = self.settings
        if self.closed is not None:
            return None
        if settings.max_lifetime_s is not None and now - self.opened_at >= settings.max_lifetime_s:
            return self.decide(LIFETIME)
        if settings.idle_timeout_s is not None and now - self.last_active >= settings.idle_timeout_s:
            return self.decide(IDLE)
        if settings.ping_interval_s is not None and now - self.last_ping >= settings.ping_interval_s:
            self.last_ping = now
            return PING
        return None

    def decide(self, close: Close) -> Close:
        """Record ``close`` unless one was decided already; returns the one that stands."""
        if self.closed is None:
            self.closed = close
        return self.closed

    # -- frames -----------------------------------------------------------------------------

    def control_frame(self, now: float) -> Close | None:
        """A ping or pong arrived: None to let it through, or the close for a flooder."""
        rule = self.settings.control_frame_throttle
        if rule is None:
            return None
        self._control_state, decision = take_tokens(
            self._control_state, rate=rule.rate, burst=rule.burst, now=now
        )
        return None if decision.allowed else CONTROL_FLOOD

    def frame_header(
        self, opcode: int, masked: bool, length: int, max_frame: int, now: float, max_message: int = 0
    ) -> Close | None:
        """The rules for one client frame header (module docstring): None, or the close.
        ``max_message`` (0: none): a single frame over it is a message too big."""
        if not masked:
            return UNMASKED
        if opcode >= 0x8:
            return self.control_frame(now) if opcode in (0x9, 0xA) else None
        if length > max_frame:
            return MESSAGE_TOO_BIG if max_message and length > max_message else FRAME_TOO_BIG
        return None

    def outcome(self, fallback: Close) -> Close:
        """What ``$disconnect`` reports: the close decided, else ``fallback`` (the socket ended
        without one, e.g. TCP dropped: 1006)."""
        return self.closed if self.closed is not None else fallback

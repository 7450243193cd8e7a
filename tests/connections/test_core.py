"""The pure connection core (connections/core.py), without sockets: close decisions, the
control-frame budget, the client's close frame, public reasons for parser errors."""

from __future__ import annotations

from connections.core import (
    ABNORMAL,
    BINARY_REFUSED,
    CONTROL_FLOOD,
    FRAME_TOO_BIG,
    IDLE,
    LIFETIME,
    MESSAGE_FLOOD,
    MESSAGE_TOO_BIG,
    NO_STATUS,
    PING,
    UNMASKED,
    Close,
    ConnectionCore,
    client_close,
    close_for_error,
    close_frame,
)
from server.config.model import ThrottleSettings, WebSocketSettings


def test_the_first_close_decided_is_the_one_reported() -> None:
    core = ConnectionCore(WebSocketSettings())
    assert core.outcome(ABNORMAL) == ABNORMAL  # nothing decided: TCP dropped
    assert core.decide(Close(1001, "Going away")) == (1001, "Going away")
    assert core.decide(MESSAGE_TOO_BIG) == (1001, "Going away")
    assert core.outcome(ABNORMAL) == (1001, "Going away")


def test_control_frames_spend_a_refilling_budget() -> None:
    core = ConnectionCore(WebSocketSettings(control_frame_throttle=ThrottleSettings(rate=2.0, burst=3)))
    assert [core.control_frame(now=0.0) for _ in range(3)] == [None, None, None]
    assert core.control_frame(now=0.0) == CONTROL_FLOOD
    assert core.control_frame(now=0.5) is None  # one token back after 0.5 s at 2/s
    assert core.control_frame(now=0.5) == CONTROL_FLOOD
    unlimited = ConnectionCore(WebSocketSettings(control_frame_throttle=None))
    assert all(unlimited.control_frame(now=0.0) is None for _ in range(10_000))


def test_default_budget_is_set_and_sane() -> None:
    rule = WebSocketSettings().control_frame_throttle
    assert rule is not None and rule.burst >= 10 and rule.rate >= 1


def test_frame_header_rules() -> None:
    core = ConnectionCore(WebSocketSettings(control_frame_throttle=ThrottleSettings(rate=0.0, burst=1)))
    assert core.frame_header(0x1, False, 5, 100, 0.0) == UNMASKED
    assert core.frame_header(0x9, False, 0, 100, 0.0) == UNMASKED
    assert core.frame_header(0x1, True, 101, 100, 0.0) == FRAME_TOO_BIG
    assert core.frame_header(0x1, True, 101, 100, 0.0, max_message=100) == MESSAGE_TOO_BIG
    assert core.frame_header(0x0, True, 100, 100, 0.0) is None
    assert core.frame_header(0x8, True, 2, 100, 0.0) is None  # close frames are not budgeted
    assert core.frame_header(0xA, True, 0, 100, 0.0) is None  # the one token
    assert core.frame_header(0x9, True, 0, 100, 0.0) == CONTROL_FLOOD


def test_client_close_frames() -> None:
    assert client_close(0, "") == (1000, NO_STATUS)
    assert client_close(1005, "") == (1000, NO_STATUS)
    assert client_close(4000, "bye") == (4000, Close(4000, "bye"))
    assert client_close(1006, "") == (1000, Close(1006, ""))  # 1006 may not be sent: answer 1000


def test_parser_errors_get_public_reasons() -> None:
    assert close_for_error(1009) == MESSAGE_TOO_BIG
    assert close_for_error(1002) == (1002, "Protocol error")
    assert close_for_error(1007) == (1007, "Invalid frame payload data")
    assert close_for_error(None) == ABNORMAL
    assert close_for_error(4321) == ABNORMAL


def test_close_frame_bytes() -> None:
    assert close_frame(Close(1002, "x")) == b"\x88\x03\x03\xeax"
    long = close_frame(Close(1008, "y" * 300))
    assert long[1] == 125 and len(long) == 127  # a control frame's payload is at most 125 bytes


def test_timers_ping_then_close_for_idleness_or_age() -> None:
    settings = WebSocketSettings(idle_timeout_s=10.0, max_lifetime_s=25.0, ping_interval_s=4.0)
    core = ConnectionCore(settings, now=100.0)
    assert core.tick(103.0) is None
    assert core.tick(104.0) == PING
    assert core.tick(105.0) is None  # the ping was recorded
    assert core.message(109.0, binary=False) is None  # activity moves the idle deadline
    assert core.tick(118.0) == PING
    assert core.tick(119.0) == IDLE and core.closed == IDLE
    assert core.tick(200.0) is None  # closed: nothing more to do
    aged = ConnectionCore(settings, now=0.0)
    for now in range(0, 25, 5):
        aged.message(float(now), binary=False)
        aged.tick(float(now))
    assert aged.tick(25.0) == LIFETIME
    never = ConnectionCore(WebSocketSettings(idle_timeout_s=None, max_lifetime_s=None, ping_interval_s=None))
    assert never.tick(1e9) is None


def test_binary_messages_and_in_flight_count() -> None:
    core = ConnectionCore(WebSocketSettings(max_inflight=3))
    assert core.message(1.0, binary=True) == BINARY_REFUSED and core.closed == BINARY_REFUSED
    allowed = ConnectionCore(WebSocketSettings(binary_frames=True))
    assert allowed.message(1.0, binary=True) is None and allowed.last_active == 1.0
    assert allowed.run_inline()  # max_inflight 1: in order, inline
    assert [core.run_inline() for _ in range(1)] == [False]
    core.started()
    assert not core.run_inline()
    core.started()
    assert core.run_inline()  # two running + this one = max_inflight: reading waits for it
    core.finished()
    assert not core.run_inline()


def test_flood_policy_counts_refusals_in_a_sliding_window() -> None:
    core = ConnectionCore(WebSocketSettings(flood_refusals=3, flood_window_s=10.0))
    assert [core.refused(now) for now in (0.0, 5.0)] == [None, None]
    assert core.refused(11.0) is None  # the first refusal fell out of the window
    assert core.refused(12.0) == MESSAGE_FLOOD  # 5, 11, 12: three within 10 s
    never = ConnectionCore(WebSocketSettings(flood_refusals=None))
    assert all(never.refused(0.0) is None for _ in range(1000))

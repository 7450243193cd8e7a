"""The pure admission decision (server/throttle/admit.py): examples and properties on a fake clock."""

from __future__ import annotations

import ast
import calendar
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.store.bucket import BucketState, new_state, refill, take_tokens
from server.throttle import admit
from server.throttle.admit import (
    QUOTA_TTL_MARGIN,
    AdmitDecision,
    BucketSpec,
    QuotaSpec,
    UsageSpec,
    admit_state,
    check_keys,
    hash_tag,
    new_decision,
    throttle_key,
)
from server.throttle.quota import QuotaPeriod, quota_window

T0 = 1_700_000_000.0
KEY = BucketSpec(throttle_key("key", "k1"), 1.0, 2)
METHOD = BucketSpec(throttle_key("method", "GET /pets"), 2.0, 5)
ACCOUNT = BucketSpec(throttle_key("acct"), 10.0, 20)
LEVELS = (KEY, METHOD, ACCOUNT)


def test_all_pass_takes_cost_everywhere_and_counts_the_quota() -> None:
    quota = QuotaSpec(throttle_key("q"), 10, 100.0)
    states, count, d = admit_state([None, None, None], 4, LEVELS, quota, now=T0, cost=2)
    assert d == AdmitDecision(True, None, 0.0, (0.0, 3.0, 18.0), 6, 4)
    assert states == (BucketState(0.0, T0), BucketState(3.0, T0), BucketState(18.0, T0))
    assert count == 6


def test_first_failure_in_the_given_order_and_nothing_taken() -> None:
    saved = [BucketState(0.25, T0), None, BucketState(0.0, T0)]  # key and account both short
    states, count, d = admit_state(saved, 3, LEVELS, QuotaSpec("{tb}:q", 10, 5.0), now=T0 + 0.5)
    assert d.failed == 0 and not d.allowed
    assert d.retry_after == 0.25  # (1 - 0.75) / 1
    # Refilled, but nothing taken: the method bucket kept its 5 tokens, the account its 5.
    assert d.remaining == (0.75, 5.0, 5.0)
    assert states == tuple(saved) and count == 3  # the caller writes nothing
    assert (d.quota_used, d.quota_remaining) == (3, 7)


def test_a_downstream_refusal_costs_upstream_levels_nothing() -> None:
    saved = [None, None, BucketState(0.0, T0)]
    states, _, d = admit_state(saved, 0, LEVELS, now=T0)
    assert (d.allowed, d.failed, d.remaining) == (False, 2, (2.0, 5.0, 0.0))
    assert d.retry_after == 0.1
    assert states == tuple(saved)


def test_quota_refusal_is_reported_after_the_buckets() -> None:
    quota = QuotaSpec(throttle_key("q"), 10, 3600.0)
    states, count, d = admit_state([None, None, None], 10, LEVELS, quota, now=T0)
    assert d == AdmitDecision(False, 3, 3600.0, (2.0, 5.0, 20.0), 10, 0)
    assert states == (None, None, None) and count == 10
    # A bucket refusal wins over the quota's: it comes first in the order.
    _, _, d = admit_state([BucketState(0.0, T0), None, None], 10, LEVELS, quota, now=T0)
    assert d.failed == 0


def test_quota_admits_exactly_up_to_allowed() -> None:
    quota = QuotaSpec(throttle_key("q"), 3, 60.0)
    count = 0
    allowed = []
    for _ in range(5):
        _, count, d = admit_state([], count, [], quota, now=T0)
        allowed.append(d.allowed)
    assert allowed == [True, True, True, False, False] and count == 3
    _, _, d = admit_state([], 1, [], quota, now=T0, cost=3)
    assert (d.allowed, d.quota_remaining) == (False, 2)


def test_cost_zero_peeks_and_counts_nothing() -> None:
    quota = QuotaSpec(throttle_key("q"), 0, 60.0)
    states, count, d = admit_state([BucketState(1.0, T0)], 0, [KEY], quota, now=T0 + 0.5, cost=0)
    assert d == AdmitDecision(True, None, 0.0, (1.5,), 0, 0)
    assert states == (BucketState(1.5, T0 + 0.5),) and count == 0


def test_without_quota_there_are_no_quota_figures() -> None:
    _, _, d = admit_state([None], 0, [KEY], now=T0)
    assert (d.quota_used, d.quota_remaining) == (None, None)


def test_cost_above_burst_or_zero_rate_waits_forever() -> None:
    _, _, d = admit_state([None], 0, [KEY], now=T0, cost=3)
    assert d.retry_after == math.inf
    closed = BucketSpec("{tb}:closed", 0.0, 0)
    _, _, d = admit_state([None, None], 0, [KEY, closed], now=T0)
    assert (d.failed, d.retry_after) == (1, math.inf)


def test_specs_validate_once_at_construction() -> None:
    for rate, burst in ((-1.0, 1), (math.inf, 1), (math.nan, 1), (1.0, -1), (1.0, 2**53 + 1)):
        with pytest.raises(ValueError):
            BucketSpec("{tb}:b", rate, burst)
    with pytest.raises(TypeError):
        BucketSpec("{tb}:b", 1.0, 1.5)  # type: ignore[arg-type]
    for allowed, ttl in ((-1, 1.0), (2**53 + 1, 1.0), (1, 0.0), (1, math.inf), (1, True)):
        with pytest.raises(ValueError):
            QuotaSpec("{tb}:q", allowed, ttl)
    with pytest.raises(ValueError):
        UsageSpec("{tb}:u", -5.0)
    with pytest.raises(ValueError):
        admit_state([None], 0, [KEY], now=math.nan)
    with pytest.raises(ValueError):
        admit_state([None], 0, [KEY], now=T0, cost=-1)
    with pytest.raises(ValueError):
        admit_state([], 0, [KEY], now=T0)


@pytest.mark.parametrize(
    ("key", "tag"),
    [  # the examples of the Redis Cluster specification
        ("{user1000}.following", "user1000"),
        ("foo{}{bar}", "foo{}{bar}"),
        ("foo{{bar}}zap", "{bar"),
        ("foo{bar}{zap}", "bar"),
        ("plain", "plain"),
        ("{tb}:acct", "tb"),
    ],
)
def test_hash_tag(key: str, tag: str) -> None:
    assert hash_tag(key) == tag


def test_keys_must_be_distinct_and_share_a_tag() -> None:
    usage = UsageSpec(throttle_key("u", "k1", "20261125"), 60.0)
    quota = QuotaSpec(throttle_key("q", "k1", "20261125"), 5, 60.0)
    assert check_keys(LEVELS, quota, usage) == [*(b.key for b in LEVELS), quota.key, usage.key]
    assert check_keys([BucketSpec("untagged", 1.0, 1)], None, None) == ["untagged"]
    with pytest.raises(ValueError, match="hash tag"):
        check_keys([KEY, BucketSpec("{other}:b", 1.0, 1)], None, None)
    with pytest.raises(ValueError, match="hash tag"):
        check_keys([BucketSpec("a", 1.0, 1), BucketSpec("b", 1.0, 1)], None, None)
    with pytest.raises(ValueError, match="distinct"):
        check_keys([KEY, KEY], None, None)
    with pytest.raises(ValueError, match="distinct"):
        check_keys([KEY], QuotaSpec(KEY.key, 1, 1.0), None)


def test_quota_spec_for_a_window() -> None:
    now = calendar.timegm((2026, 11, 25, 1, 0, 0)) + 0.5
    window = quota_window(QuotaPeriod.DAY, 1000, now)
    spec = QuotaSpec.for_window(throttle_key("q", "plan", "k1", window.key_suffix), window, now)
    assert spec.key == "{tb}:q:plan:k1:20261125"
    assert spec.allowed == 1000
    assert spec.ttl == 23 * 3600 - 0.5 + QUOTA_TTL_MARGIN
    # The next window is another counter: the count starts again at the period boundary.
    later = quota_window(QuotaPeriod.DAY, 1000, window.end)
    assert later.key_suffix == "20261126"


# -- properties ---------------------------------------------------------------------------------

rates = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
bursts = st.integers(min_value=0, max_value=1000)
steps = st.floats(min_value=0.0, max_value=100.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=300)
@given(
    levels=st.lists(st.tuples(rates, bursts), min_size=1, max_size=4),
    allowed=st.one_of(st.none(), st.integers(0, 200)),
    start=st.floats(min_value=-1e9, max_value=2e9, allow_nan=False, allow_infinity=False),
    events=st.lists(st.tuples(steps, st.integers(0, 30)), min_size=1, max_size=40),
)
def test_no_level_admits_more_than_rate_times_t_plus_burst(
    levels: list[tuple[float, int]], allowed: int | None, start: float, events: list[tuple[float, int]]
) -> None:
    """Over every window [t_i, t_j], the cost admitted <= rate * (t_j - t_i) + burst at every
    level, and in total <= the quota's allowed."""
    buckets = [BucketSpec(f"{{tb}}:{i}", rate, burst) for i, (rate, burst) in enumerate(levels)]
    quota = None if allowed is None else QuotaSpec("{tb}:q", allowed, 60.0)
    states: tuple[BucketState | None, ...] = (None,) * len(buckets)
    count = 0
    now = start
    history: list[tuple[float, int]] = []  # (time, cost admitted)
    for step, cost in events:
        now += step
        new_states, new_count, d = admit_state(states, count, buckets, quota, now=now, cost=cost)
        if not d.allowed:
            assert new_states == states and new_count == count  # nothing consumed
        states, count = new_states, new_count
        history.append((now, cost if d.allowed else 0))
    if quota is not None:
        assert count == sum(c for _, c in history) <= quota.allowed
    for i, (t_i, _) in enumerate(history):
        admitted = 0
        for t_j, cost in history[i:]:
            admitted += cost
            for spec in buckets:
                bound = spec.rate * (t_j - t_i) + spec.burst
                assert admitted <= bound + 1e-9 * max(1.0, bound, abs(t_j) * spec.rate)


@given(
    rate=rates,
    burst=bursts,
    tokens=st.floats(min_value=0.0, max_value=1500.0),
    stamp=st.floats(min_value=-1e9, max_value=2e9),
    step=st.floats(min_value=-10.0, max_value=100.0),
    cost=st.integers(0, 1200),
    fresh=st.booleans(),
)
def test_one_bucket_is_take_tokens(
    rate: float, burst: int, tokens: float, stamp: float, step: float, cost: int, fresh: bool
) -> None:
    """Bit for bit the arithmetic of Store.take; only a refusal differs: it writes nothing."""
    state = None if fresh else BucketState(tokens, stamp)
    spec = BucketSpec("b", rate, burst)
    expected_state, expected = take_tokens(state, rate=rate, burst=burst, now=stamp + step, cost=cost)
    states, _, d = admit_state([state], 0, [spec], now=stamp + step, cost=cost)
    assert (d.allowed, d.remaining, d.retry_after) == (
        expected.allowed,
        (expected.remaining,),
        expected.retry_after,
    )
    assert states == ((expected_state,) if d.allowed else (state,))


@given(
    levels=st.lists(st.tuples(rates, bursts, st.floats(0.0, 1500.0)), min_size=1, max_size=4),
    cost=st.integers(0, 60),
    step=st.floats(min_value=0.0, max_value=10.0),
)
def test_allowed_iff_every_level_has_the_tokens(
    levels: list[tuple[float, int, float]], cost: int, step: float
) -> None:
    buckets = [BucketSpec(f"{{tb}}:{i}", rate, burst) for i, (rate, burst, _) in enumerate(levels)]
    saved = [BucketState(tokens, T0) for _, _, tokens in levels]
    _, _, d = admit_state(saved, 0, buckets, now=T0 + step, cost=cost)
    have = [refill(s, b.rate, b.burst, T0 + step)[0] for s, b in zip(saved, buckets, strict=True)]
    short = [i for i, tokens in enumerate(have) if not cost <= tokens]
    assert d.allowed == (not short)
    assert d.failed == (short[0] if short else None)
    assert d.remaining == (tuple(t - cost for t in have) if d.allowed else tuple(have))


def test_fast_constructors_build_the_same_frozen_values() -> None:
    d = new_decision(True, None, 0.0, (1.0,), 2, 3)
    assert d == AdmitDecision(True, None, 0.0, (1.0,), 2, 3) and hash(d) == hash(
        AdmitDecision(True, None, 0.0, (1.0,), 2, 3)
    )
    state = new_state(1.5, T0)
    assert state == BucketState(1.5, T0) and repr(state) == repr(BucketState(1.5, T0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.allowed = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.tokens = 0.0  # type: ignore[misc]


def test_module_is_pure() -> None:
    """admit.py imports no I/O library, and importing it loads none."""
    tree = ast.parse(Path(admit.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {
        "__future__",
        "math",
        "operator",
        "collections.abc",
        "dataclasses",
        "server.store.bucket",
        "server.throttle.quota",
    }
    probe = (
        "import sys, server.throttle.admit; "
        "print(sorted({'asyncio', 'redis', 'aiohttp', 'hiredis', 'socket'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""The pure token bucket (server/store/bucket.py): examples and properties on a fake clock."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.store import bucket
from server.store.bucket import BucketDecision, BucketState, take_tokens

# Bounded, "human" configurations: rates from 1/1000 to 10^5 tokens/s, bursts up to 10^4.
rates = st.floats(min_value=1e-3, max_value=1e5, allow_nan=False, allow_infinity=False)
bursts = st.integers(min_value=0, max_value=10_000)
steps = st.floats(min_value=0.0, max_value=1e3, allow_nan=False, allow_infinity=False)
starts = st.floats(min_value=-1e9, max_value=2e9, allow_nan=False, allow_infinity=False)


def run(
    rate: float, burst: int, start: float, events: list[tuple[float, int]]
) -> list[tuple[float, int, BucketDecision]]:
    """Feed (step, cost) events to a fresh bucket; return (time, cost, decision) per event."""
    state: BucketState | None = None
    now = start
    out = []
    for step, cost in events:
        now += step
        state, decision = take_tokens(state, rate=rate, burst=burst, now=now, cost=cost)
        out.append((now, cost, decision))
    return out


def test_examples() -> None:
    state, d = take_tokens(None, rate=1.0, burst=2, now=10.0)
    assert (state, d) == (BucketState(1.0, 10.0), BucketDecision(True, 1.0, 0.0, 1.0))
    state, d = take_tokens(state, rate=1.0, burst=2, now=10.0, cost=2)
    assert (state, d) == (BucketState(1.0, 10.0), BucketDecision(False, 1.0, 1.0, 1.0))
    state, d = take_tokens(state, rate=1.0, burst=2, now=11.5, cost=2)
    assert (state, d) == (BucketState(0.0, 11.5), BucketDecision(True, 0.0, 0.0, 2.0))
    state, d = take_tokens(state, rate=1.0, burst=2, now=20.0, cost=0)
    assert (state, d) == (None, BucketDecision(True, 2.0, 0.0, 0.0))


def test_lowered_burst_clamps_saved_tokens() -> None:
    state, d = take_tokens(BucketState(100.0, 5.0), rate=1.0, burst=10, now=5.0)
    assert d.remaining == 9.0 and state == BucketState(9.0, 5.0)


@settings(max_examples=300)
@given(
    rate=rates,
    burst=bursts,
    start=starts,
    events=st.lists(st.tuples(steps, st.integers(0, 60)), min_size=1, max_size=40),
)
def test_never_more_than_rate_times_t_plus_burst(
    rate: float, burst: int, start: float, events: list[tuple[float, int]]
) -> None:
    """Over every window [t_i, t_j], admitted cost <= rate * (t_j - t_i) + burst."""
    history = run(rate, burst, start, events)
    for i, (t_i, _, _) in enumerate(history):
        admitted = 0
        for t_j, cost, decision in history[i:]:
            admitted += cost if decision.allowed else 0
            bound = rate * (t_j - t_i) + burst
            assert admitted <= bound + 1e-9 * max(1.0, bound, abs(t_j) * rate), (i, t_j, admitted, bound)


@given(
    rate=st.integers(1, 1000),
    burst=st.integers(1, 10_000),
    empty_for=st.integers(0, 100),
    start=st.integers(-(10**9), 10**9),
)
def test_refill_is_exact(rate: int, burst: int, empty_for: int, start: int) -> None:
    """From empty, after t whole seconds exactly min(burst, rate * t) tokens exist."""
    state, d = take_tokens(None, rate=rate, burst=burst, now=start, cost=burst)
    assert d.allowed and d.remaining == 0
    _, d = take_tokens(state, rate=rate, burst=burst, now=start + empty_for, cost=0)
    assert d.remaining == min(burst, rate * empty_for)
    assert d.reset_after == (burst - d.remaining) / rate


@given(rate=rates, burst=bursts, over=st.integers(1, 10**6), start=starts, wait=steps)
def test_cost_above_burst_always_refused(
    rate: float, burst: int, over: int, start: float, wait: float
) -> None:
    state, d = take_tokens(None, rate=rate, burst=burst, now=start, cost=burst + over)
    assert not d.allowed and d.retry_after == math.inf and state is None
    _, d = take_tokens(state, rate=rate, burst=burst, now=start + wait, cost=burst + over)
    assert not d.allowed and d.retry_after == math.inf


@given(
    rate=rates,
    burst=st.integers(1, 10_000),
    start=starts,
    events=st.lists(st.tuples(steps, st.integers(0, 60)), max_size=20),
    data=st.data(),
)
def test_retry_after_is_when_tokens_exist(
    rate: float, burst: int, start: float, events: list[tuple[float, int]], data: st.DataObject
) -> None:
    """A refused request succeeds once retry_after has passed (up to float rounding)."""
    state: BucketState | None = None
    now = start
    for step, cost in events:
        now += step
        state, _ = take_tokens(state, rate=rate, burst=burst, now=now, cost=cost)
    cost = data.draw(st.integers(1, burst))
    state, d = take_tokens(state, rate=rate, burst=burst, now=now, cost=cost)
    if d.allowed:
        assert d.retry_after == 0.0
        return
    assert 0 < d.retry_after < math.inf
    slack = 1e-9 * max(1.0, abs(now)) + 1e-9 * d.retry_after
    _, later = take_tokens(state, rate=rate, burst=burst, now=now + d.retry_after + slack, cost=cost)
    assert later.allowed
    if d.retry_after > 1e-3:
        _, early = take_tokens(state, rate=rate, burst=burst, now=now + d.retry_after / 2, cost=cost)
        assert not early.allowed


@given(rate=rates, burst=st.integers(1, 10_000), start=starts, cost=st.integers(1, 10_000))
def test_full_again_after_reset_after(rate: float, burst: int, start: float, cost: int) -> None:
    state, d = take_tokens(None, rate=rate, burst=burst, now=start, cost=min(cost, burst))
    assert d.allowed and state is not None
    slack = 1e-9 * max(1.0, abs(start)) + 1e-9 * d.reset_after
    after, full = take_tokens(state, rate=rate, burst=burst, now=start + d.reset_after + slack, cost=0)
    assert after is None and full.remaining == burst


@given(rate=rates, burst=bursts, start=starts, back=steps)
def test_clock_going_back_refills_nothing(rate: float, burst: int, start: float, back: float) -> None:
    state, _ = take_tokens(None, rate=rate, burst=burst, now=start, cost=burst)
    behind_state, d = take_tokens(state, rate=rate, burst=burst, now=start - back, cost=0)
    assert d.remaining == 0.0
    assert behind_state == state


def test_validation() -> None:
    with pytest.raises(ValueError):
        take_tokens(None, rate=-0.1, burst=1, now=0.0)
    with pytest.raises(ValueError):
        take_tokens(None, rate=math.inf, burst=1, now=0.0)
    with pytest.raises(ValueError):
        take_tokens(None, rate=1.0, burst=1, now=math.nan)
    with pytest.raises(ValueError):
        take_tokens(None, rate=1.0, burst=-1, now=0.0)
    with pytest.raises(ValueError):
        take_tokens(None, rate=1.0, burst=1, now=0.0, cost=2**53 + 1)
    with pytest.raises(TypeError):
        take_tokens(None, rate=1.0, burst=1, now=0.0, cost=1.0)  # type: ignore[arg-type]


def test_module_is_pure() -> None:
    """bucket.py imports no I/O library, and importing it (and its package) loads none."""
    tree = ast.parse(Path(bucket.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {"__future__", "math", "operator", "dataclasses"}
    probe = (
        "import sys, server.store.bucket; print(sorted({'asyncio', 'redis', 'aiohttp'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

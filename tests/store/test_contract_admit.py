"""Store.admit on both stores: one atomic decision over every bucket, the quota and usage."""

from __future__ import annotations

import asyncio
import math
import random
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.store.base import Store, StoreError, StoreUnavailable
from server.store.bucket import BucketState
from server.throttle.admit import AdmitDecision, BucketSpec, QuotaSpec, UsageSpec, admit_state
from tests.store.conftest import StoreEnv

T0 = 1_700_000_000.0
KEY = BucketSpec("{tb}:key:k1", 1.0, 2)
METHOD = BucketSpec("{tb}:method:GET /pets", 1.0, 3)
ACCOUNT = BucketSpec("{tb}:acct", 1.0, 10)
LEVELS = [KEY, METHOD, ACCOUNT]  # AWS's order: most specific first
QUOTA = QuotaSpec("{tb}:q:plan:k1:20261125", 3, 600.0)
USAGE = UsageSpec("{tb}:u:plan:k1:20261125", 900.0)


async def peek(store: Store, spec: BucketSpec, now: float = T0) -> float:
    """Tokens in ``spec`` at ``now`` (a cost-0 admit takes nothing)."""
    return (await store.admit([spec], now=now, cost=0)).remaining[0]


async def test_admitted_takes_from_every_level_and_counts(store: Store) -> None:
    d = await store.admit(LEVELS, QUOTA, now=T0, usage=USAGE)
    assert d == AdmitDecision(True, None, 0.0, (1.0, 2.0, 9.0), 1, 2)
    d = await store.admit(LEVELS, QUOTA, now=T0, cost=1, usage=USAGE)
    assert d == AdmitDecision(True, None, 0.0, (0.0, 1.0, 8.0), 2, 1)
    assert await store.get(QUOTA.key) == b"2"
    assert await store.get(USAGE.key) == b"2"
    quota_ttl, usage_ttl = await store.ttl(QUOTA.key), await store.ttl(USAGE.key)
    assert quota_ttl is not None and 599 < quota_ttl <= 600
    assert usage_ttl is not None and 899 < usage_ttl <= 900


async def test_refusal_takes_nothing_anywhere(store: Store) -> None:
    for _ in range(2):
        assert (await store.admit(LEVELS, QUOTA, now=T0, usage=USAGE)).allowed
    other_key = BucketSpec("{tb}:key:k2", 1.0, 5)
    assert (await store.admit([other_key, METHOD, ACCOUNT], now=T0)).allowed  # method: 0 left
    refused = await store.admit([BucketSpec("{tb}:key:k3", 1.0, 5), METHOD, ACCOUNT], now=T0)
    assert (refused.allowed, refused.failed, refused.retry_after) == (False, 1, 1.0)
    assert refused.remaining == (5.0, 0.0, 7.0)
    # The key bucket upstream of the refusal and the account downstream kept their tokens.
    assert await peek(store, BucketSpec("{tb}:key:k3", 1.0, 5)) == 5.0
    assert await peek(store, ACCOUNT) == 7.0
    assert await store.ttl("{tb}:key:k3") is None  # still full: never written


async def test_quota_refusal_counts_nothing(store: Store) -> None:
    for _ in range(3):
        assert (await store.admit([ACCOUNT], QUOTA, now=T0, usage=USAGE)).allowed
    d = await store.admit([ACCOUNT], QUOTA, now=T0, usage=USAGE)
    assert d == AdmitDecision(False, 1, 600.0, (7.0,), 3, 0)
    assert await store.get(QUOTA.key) == b"3"
    assert await store.get(USAGE.key) == b"3"
    assert await peek(store, ACCOUNT) == 7.0


async def test_first_failure_in_order_wins(store: Store) -> None:
    exhausted = BucketSpec("{tb}:zero", 1.0, 0)
    d = await store.admit(
        [KEY, exhausted, BucketSpec("{tb}:also", 0.0, 0)], QuotaSpec("{tb}:q0", 0, 5.0), now=T0
    )
    assert (d.failed, d.retry_after, d.quota_used, d.quota_remaining) == (1, math.inf, 0, 0)


async def test_a_refused_first_call_creates_no_key(store: Store) -> None:
    quota = QuotaSpec("{tb}:q", 0, 60.0)
    d = await store.admit([KEY], quota, now=T0, usage=UsageSpec("{tb}:u", 60.0))
    assert (d.allowed, d.failed) == (False, 1)
    for key in (KEY.key, "{tb}:q", "{tb}:u"):
        assert await store.ttl(key) is None


async def test_cost_zero_counts_nothing(store: Store) -> None:
    d = await store.admit([KEY], QUOTA, now=T0, cost=0, usage=USAGE)
    assert d == AdmitDecision(True, None, 0.0, (2.0,), 0, 3)
    assert await store.get(QUOTA.key) is None and await store.get(USAGE.key) is None


async def test_counter_ttl_is_set_when_created_and_kept(store_env: StoreEnv) -> None:
    store = store_env.store
    quota = QuotaSpec("{tb}:q", 100, 0.5)
    usage = UsageSpec("{tb}:u", 0.6)
    await store.admit([], quota, now=T0, usage=usage)
    await store_env.advance(0.2)
    await store.admit([], QuotaSpec("{tb}:q", 100, 50.0), now=T0, usage=UsageSpec("{tb}:u", 50.0))
    quota_ttl, usage_ttl = await store.ttl("{tb}:q"), await store.ttl("{tb}:u")
    assert quota_ttl is not None and quota_ttl <= 0.3  # the first TTL still runs
    assert usage_ttl is not None and usage_ttl <= 0.4
    assert await store.get("{tb}:q") == b"2"
    await store_env.advance(0.7)
    assert await store.get("{tb}:q") is None and await store.get("{tb}:u") is None  # a new window


async def test_bucket_key_expires_when_full_again(store_env: StoreEnv) -> None:
    store = store_env.store
    spec = BucketSpec("{tb}:b", 20.0, 1)
    await store.admit([spec], now=T0)
    ttl = await store.ttl(spec.key)
    assert ttl is not None and 0 < ttl <= 0.052
    await store_env.advance(0.15)
    assert await store.ttl(spec.key) is None
    assert await store.ttl("{tb}:zero-rate") is None
    await store.admit([BucketSpec("{tb}:zero-rate", 0.0, 1)], now=T0)
    assert await store.ttl("{tb}:zero-rate") == math.inf


async def test_keys_are_checked_on_every_store(store: Store) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        await store.admit([KEY, BucketSpec("{other}:b", 1.0, 1)], now=T0)
    with pytest.raises(ValueError, match="hash tag"):
        await store.admit([BucketSpec("a", 1.0, 1)], QuotaSpec("b", 1, 1.0), now=T0)
    with pytest.raises(ValueError, match="distinct"):
        await store.admit([KEY], now=T0, usage=UsageSpec(KEY.key, 1.0))
    with pytest.raises(ValueError):
        await store.admit([KEY], now=math.inf)
    with pytest.raises(TypeError):
        await store.admit([KEY], now=T0, cost=1.0)  # type: ignore[arg-type]
    assert await store.ttl(KEY.key) is None
    # One key needs no tag.
    assert (await store.admit([BucketSpec("plain", 1.0, 1)], now=T0)).allowed


async def test_a_non_integer_counter_is_an_error_and_nothing_is_written(store: Store) -> None:
    for bad in (b"x", b"1.5", b" 1", b"007", b"-0", b"9007199254740993", b"99999999999999999999"):
        await store.set("{tb}:u", bad)
        with pytest.raises(StoreError) as caught:
            await store.admit([KEY], QUOTA, now=T0, usage=UsageSpec("{tb}:u", 60.0))
        assert not isinstance(caught.value, StoreUnavailable)
        assert "not an integer" in str(caught.value)
        assert await store.ttl(KEY.key) is None and await store.get(QUOTA.key) is None
    await store.set("{tb}:u", b"-9007199254740992")
    assert (await store.admit([KEY], now=T0, usage=UsageSpec("{tb}:u", 60.0))).allowed
    assert await store.get("{tb}:u") == b"-9007199254740991"


async def test_keys_of_another_kind_are_replaced(store: Store) -> None:
    """Admission's keys are its own: a hash or set found there counts as absent."""
    await store.hset(KEY.key, {"t": b"1"})
    await store.sadd(QUOTA.key, "m")
    assert await store.admit([KEY], QUOTA, now=T0) == AdmitDecision(True, None, 0.0, (1.0,), 1, 2)
    assert await store.get(QUOTA.key) == b"1"


async def test_quota_only(store: Store) -> None:
    results = [await store.admit([], QUOTA, now=T0, cost=2) for _ in range(2)]
    assert [(d.allowed, d.quota_used, d.remaining) for d in results] == [(True, 2, ()), (False, 2, ())]


async def test_concurrent_admits_are_exact(store: Store) -> None:
    levels = [BucketSpec("{tb}:k", 0.0, 50), BucketSpec("{tb}:m", 0.0, 80), BucketSpec("{tb}:a", 0.0, 1000)]
    quota = QuotaSpec("{tb}:q", 45, 60.0)
    decisions = await asyncio.gather(*(store.admit(levels, quota, now=T0) for _ in range(300)))
    admitted = [d for d in decisions if d.allowed]
    assert len(admitted) == 45
    assert sorted(d.quota_used or 0 for d in admitted) == list(range(1, 46))
    assert sorted(d.remaining[2] for d in admitted) == list(range(955, 1000))
    assert {d.failed for d in decisions if not d.allowed} == {3}
    assert await peek(store, levels[2]) == 955.0


async def test_closed_store_refuses(store_env: StoreEnv) -> None:
    other = await store_env.make()
    await other.close()
    with pytest.raises(StoreUnavailable):
        await other.admit([KEY], now=T0)


async def test_matches_pure_model_exactly(store: Store) -> None:
    """A long random sequence gives the decisions of admit_state, bit for bit.

    Rates are in {1/4 .. 4} and time moves in quarter seconds, so a bucket short of being full
    is short of >= 1/4 s worth of tokens: its Redis key (whose TTL runs in real time) outlives
    every call of this test, and real-time expiry cannot interfere with the fake `now`.
    """
    rng = random.Random(20261125)
    for round_ in range(6):
        specs = [
            BucketSpec(f"{{tb}}:{round_}:{i}", rng.choice([0.25, 0.5, 1.0, 2.0, 4.0]), rng.randint(0, 6))
            for i in range(rng.randint(1, 4))
        ]
        quota = rng.choice([None, QuotaSpec(f"{{tb}}:{round_}:q", rng.randint(0, 30), 60.0)])
        states: tuple[BucketState | None, ...] = (None,) * len(specs)
        count = 0
        now = T0
        for _ in range(40):
            now += rng.choice([0.0, 0.0, 0.25, 0.5, 1.0, 3.0, -0.5])
            cost = rng.randint(0, 3)
            states, count, expected = admit_state(states, count, specs, quota, now=now, cost=cost)
            got = await store.admit(specs, quota, now=now, cost=cost)
            assert got == expected, (round_, now, cost)


quarter_rates = st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    levels=st.lists(st.tuples(quarter_rates, st.integers(0, 8)), min_size=1, max_size=4),
    allowed=st.one_of(st.none(), st.integers(0, 40)),
    events=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 4)), min_size=1, max_size=30),
)
async def test_no_level_admits_more_than_rate_times_t_plus_burst(
    store: Store, levels: list[tuple[float, int]], allowed: int | None, events: list[tuple[int, int]]
) -> None:
    """The property of tests/throttle on a real store: every level, every window."""
    tag = f"{{tb}}:{uuid.uuid4().hex}"  # a fresh key space per example
    specs = [BucketSpec(f"{tag}:{i}", rate, burst) for i, (rate, burst) in enumerate(levels)]
    quota = None if allowed is None else QuotaSpec(f"{tag}:q", allowed, 60.0)
    now = T0
    history: list[tuple[float, int]] = []
    for quarters, cost in events:
        now += quarters / 4
        d = await store.admit(specs, quota, now=now, cost=cost)
        history.append((now, cost if d.allowed else 0))
    if quota is not None:
        counted = await store.get(quota.key)
        assert int(counted or 0) == sum(c for _, c in history) <= quota.allowed
    for i, (t_i, _) in enumerate(history):
        admitted = 0
        for t_j, cost in history[i:]:
            admitted += cost
            assert all(admitted <= spec.rate * (t_j - t_i) + spec.burst for spec in specs)


async def test_a_list_of_specs_changed_between_calls_is_read_again(store: Store) -> None:
    """Stores may remember a spec tuple (frozen) between calls, never a list: a caller that
    reuses and changes a list gets decisions for what it holds now."""
    buckets = [BucketSpec("{tb}:list-a", 0.001, 1)]
    assert (await store.admit(buckets, now=T0)).allowed
    assert not (await store.admit(buckets, now=T0)).allowed
    buckets[0] = BucketSpec("{tb}:list-b", 0.001, 1)
    assert (await store.admit(buckets, now=T0)).allowed
    specs = (BucketSpec("{tb}:tuple", 0.001, 2),)
    assert [(await store.admit(specs, now=T0)).allowed for _ in range(3)] == [True, True, False]

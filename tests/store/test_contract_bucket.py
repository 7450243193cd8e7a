"""Store.take on both stores: the token bucket of server/store/bucket.py, atomically, per key."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from server.store.base import BucketDecision, Store
from server.store.bucket import BucketState, take_tokens
from tests.store.conftest import StoreEnv

T0 = 1_700_000_000.0  # wall-clock-like `now`, as nodes sharing Redis pass it


async def test_fresh_bucket_allows_burst_then_refuses(store: Store) -> None:
    decisions = [await store.take("b", rate=2, burst=3, now=T0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0] == BucketDecision(True, 2.0, 0.0, 0.5)
    assert decisions[3] == BucketDecision(False, 0.0, 0.5, 1.5)


async def test_refill_is_exact_and_capped(store: Store) -> None:
    for _ in range(4):
        await store.take("b", rate=4, burst=4, now=T0)
    d = await store.take("b", rate=4, burst=4, now=T0 + 0.25)  # one token came back
    assert d == BucketDecision(True, 0.0, 0.0, 1.0)
    d = await store.take("b", rate=4, burst=4, now=T0 + 0.375, cost=1)  # half a token
    assert d == BucketDecision(False, 0.5, 0.125, 0.875)
    d = await store.take("b", rate=4, burst=4, now=T0 + 100, cost=0)  # capped at burst
    assert d == BucketDecision(True, 4.0, 0.0, 0.0)


async def test_cost_above_burst_is_never_allowed(store: Store) -> None:
    d = await store.take("b", rate=1000, burst=5, now=T0, cost=6)
    assert d == BucketDecision(False, 5.0, math.inf, 0.0)
    assert (await store.take("b", rate=1000, burst=5, now=T0, cost=5)).allowed


async def test_zero_rate_never_refills(store: Store) -> None:
    assert (await store.take("b", rate=0, burst=1, now=T0)).allowed
    d = await store.take("b", rate=0, burst=1, now=T0 + 1e6)
    assert d == BucketDecision(False, 0.0, math.inf, math.inf)
    assert await store.ttl("b") == math.inf
    # burst 0: everything costing something is refused, forever.
    assert await store.take("z", rate=5, burst=0, now=T0) == BucketDecision(False, 0.0, math.inf, 0.0)


async def test_clock_going_backwards_does_not_refill_twice(store: Store) -> None:
    await store.take("b", rate=1, burst=2, now=T0, cost=2)
    behind = await store.take("b", rate=1, burst=2, now=T0 - 10, cost=0)
    assert behind.remaining == 0.0
    # The stamp stayed at T0: one second later exactly one token exists.
    assert (await store.take("b", rate=1, burst=2, now=T0 + 1, cost=0)).remaining == 1.0


async def test_cost_zero_peeks_without_taking(store: Store) -> None:
    assert await store.take("b", rate=1, burst=3, now=T0, cost=0) == BucketDecision(True, 3.0, 0.0, 0.0)
    assert await store.ttl("b") is None  # a full bucket is not stored


async def test_bucket_key_expires_when_full_again(store_env: StoreEnv) -> None:
    store = store_env.store
    d = await store.take("b", rate=20, burst=1, now=T0)
    assert d.reset_after == 0.05
    ttl = await store.ttl("b")
    assert ttl is not None and 0 < ttl <= 0.052
    await store_env.advance(0.15)
    assert await store.ttl("b") is None
    # The key is gone, so even at the same `now` the bucket is full: that is equivalent,
    # since by the time the key expires the bucket would have refilled.
    assert (await store.take("b", rate=20, burst=1, now=T0 + 0.15)).allowed


async def test_invalid_arguments(store: Store) -> None:
    for kwargs in (
        {"rate": -1.0, "burst": 1, "now": T0},
        {"rate": math.nan, "burst": 1, "now": T0},
        {"rate": math.inf, "burst": 1, "now": T0},
        {"rate": 1.0, "burst": -1, "now": T0},
        {"rate": 1.0, "burst": 2**53 + 1, "now": T0},
        {"rate": 1.0, "burst": 1, "now": math.inf},
        {"rate": 1.0, "burst": 1, "now": T0, "cost": -1},
    ):
        with pytest.raises(ValueError):
            await store.take("b", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await store.take("b", rate=1.0, burst=1.5, now=T0)  # type: ignore[arg-type]


async def test_concurrent_takes_admit_exactly_burst(store: Store) -> None:
    decisions = await asyncio.gather(*(store.take("b", rate=0.001, burst=10, now=T0) for _ in range(60)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


async def test_buckets_are_independent_per_key(store: Store) -> None:
    assert (await store.take("a", rate=1, burst=1, now=T0)).allowed
    assert (await store.take("b", rate=1, burst=1, now=T0)).allowed
    assert not (await store.take("a", rate=1, burst=1, now=T0)).allowed


async def test_matches_pure_model_exactly(store: Store) -> None:
    """A long random sequence gives bit-identical decisions to bucket.take_tokens.

    Rates, steps and costs are chosen so any unfilled deficit is >= 1/16 token at <= 1 token/s:
    the Redis key then lives >= 62 ms of real time, far longer than between two calls here,
    so real-time expiry cannot interfere with the fake `now`.
    """
    rng = random.Random(20240601)
    for bucket in range(8):
        rate = rng.choice([0.25, 0.5, 1.0])
        burst = rng.randint(0, 6)
        state: BucketState | None = None
        now = T0
        for _ in range(40):
            now += rng.choice([0.0, 0.25, 0.5, 1.0, 3.0, -0.5])
            cost = rng.randint(0, burst + 1)
            state, expected = take_tokens(state, rate=rate, burst=burst, now=now, cost=cost)
            got = await store.take(f"b{bucket}", rate=rate, burst=burst, now=now, cost=cost)
            assert got == expected, (bucket, rate, burst, now, cost)

"""BUCKET_LUA is bucket.take_tokens, bit for bit: one step from an arbitrary saved state.

Each example writes a bucket state straight into Redis, runs one take() and compares the
decision, the saved state and the key's TTL with the pure function. Because the state is
written right before the call, real time cannot expire it first, so any float input is fair
game. (A state saved with a TTL of a few ms may expire before it is read back; that is fine.)
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server.store.bucket import BucketState, take_tokens
from server.store.redis import RedisStore

pytestmark = pytest.mark.redis

KEY = "bucket"


@pytest.fixture
async def stores(clean_redis_url: str) -> AsyncIterator[tuple[RedisStore, aioredis.Redis]]:
    store = RedisStore(clean_redis_url)
    raw = aioredis.Redis.from_url(clean_redis_url, protocol=2)
    await store.start()
    yield store, raw
    await raw.aclose()
    await store.close()


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


@st.composite
def steps(draw: st.DrawFn) -> tuple[BucketState | None, float, int, float, int]:
    rate = draw(st.one_of(st.just(0.0), _floats(0.0, 1e7)))
    burst = draw(st.one_of(st.integers(0, 20), st.integers(0, 2**53)))
    stamp = draw(_floats(-1e10, 1e10))
    now = draw(st.one_of(st.just(stamp), _floats(-1e10, 1e10)))
    tokens_max = max(1.0, burst * 1.5)  # above burst: a bucket saved under a larger burst
    tokens = draw(_floats(0.0, tokens_max))
    state = draw(st.one_of(st.none(), st.just(BucketState(tokens, stamp))))
    cost = draw(st.one_of(st.integers(0, 25), st.integers(0, 2**53)))
    return state, rate, burst, now, cost


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(step=steps())
@example(step=(BucketState(0.1, 0.0), 0.1, 1, 3.0, 1))  # 0.1 + 0.3: a classic rounding case
@example(step=(BucketState(5e-324, 1.0), 1e-300, 1, 2.0, 1))  # subnormals survive the trip
@example(step=(None, 2.2250738585072014e-308, 1, 0.0, 1))  # reset_after * 1000 overflows
async def test_lua_matches_python(
    stores: tuple[RedisStore, aioredis.Redis], step: tuple[BucketState | None, float, int, float, int]
) -> None:
    store, raw = stores
    state, rate, burst, now, cost = step
    name = store.namespace + KEY
    await raw.delete(name)
    if state is not None:
        await raw.hset(name, mapping={"t": repr(state.tokens), "s": repr(state.stamp)})

    expected_state, expected = take_tokens(state, rate=rate, burst=burst, now=now, cost=cost)
    got = await store.take(KEY, rate=rate, burst=burst, now=now, cost=cost)

    assert got == expected
    async with raw.pipeline(transaction=True) as pipe:
        _ = pipe.hgetall(name)
        _ = pipe.pttl(name)
        saved, pttl = await pipe.execute()
    if expected_state is None:
        assert saved == {} and pttl == -2
        return
    wanted = expected.reset_after * 1000  # may overflow to inf (rate near the smallest double)
    wanted_ms = math.ceil(wanted) if math.isfinite(wanted) else math.inf
    if not saved and wanted_ms < 5000:
        return  # a short-lived state already expired before we could read it back
    assert BucketState(float(saved[b"t"]), float(saved[b"s"])) == expected_state
    if wanted_ms >= 4e15:
        assert pttl == -1  # effectively never: persisted rather than an out-of-range PEXPIRE
    else:
        assert wanted_ms - 5000 <= pttl <= wanted_ms

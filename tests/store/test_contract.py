"""The store contract: every test runs against the embedded store and against a real Redis.

TTL tests use short TTLs and ``advance`` (fake clock for the embedded store, real sleep for
Redis); "not yet expired" checks use long TTLs so a slow machine cannot make them flaky.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

import pytest

from server.store.base import Store, StoreError, StoreUnavailable, Subscription
from tests.store.conftest import StoreEnv

SHORT = 0.05  # a TTL that has surely passed after advance(WAIT)
WAIT = 0.15
LONG = 100.0


async def test_is_a_store(store: Store, store_env: StoreEnv) -> None:
    assert isinstance(store, Store)
    assert store.name == store_env.kind
    assert await store.ping() is True


# -- strings, TTLs, delete ---------------------------------------------------------------------


async def test_get_set_roundtrip_binary(store: Store) -> None:
    assert await store.get("k") is None
    assert await store.set("k", b"\x00\xffbinary\r\n") is True
    assert await store.get("k") == b"\x00\xffbinary\r\n"
    assert await store.set("k", b"") is True
    assert await store.get("k") == b""


async def test_set_only_if_absent(store: Store) -> None:
    assert await store.set("k", b"first", only_if_absent=True) is True
    assert await store.set("k", b"second", only_if_absent=True) is False
    assert await store.get("k") == b"first"


async def test_set_with_ttl_expires(store_env: StoreEnv) -> None:
    store = store_env.store
    await store.set("short", b"v", ttl=SHORT)
    await store.set("long", b"v", ttl=LONG)
    await store_env.advance(WAIT)
    assert await store.get("short") is None
    assert await store.get("long") == b"v"
    # An expired key is absent for only_if_absent too.
    assert await store.set("short", b"again", only_if_absent=True) is True


async def test_set_replaces_ttl(store_env: StoreEnv) -> None:
    store = store_env.store
    await store.set("k", b"v", ttl=SHORT)
    await store.set("k", b"w")  # like Redis SET: the old TTL is gone
    assert await store.ttl("k") == math.inf
    await store_env.advance(WAIT)
    assert await store.get("k") == b"w"


async def test_ttl_reports_remaining_time(store: Store) -> None:
    assert await store.ttl("missing") is None
    await store.set("forever", b"v")
    assert await store.ttl("forever") == math.inf
    await store.set("k", b"v", ttl=LONG)
    remaining = await store.ttl("k")
    assert remaining is not None and LONG - 5 < remaining <= LONG


async def test_expire(store_env: StoreEnv) -> None:
    store = store_env.store
    assert await store.expire("missing", LONG) is False
    await store.set("k", b"v")
    await store.hset("h", {"f": b"v"})
    assert await store.expire("k", SHORT) is True
    assert await store.expire("h", SHORT) is True
    await store_env.advance(WAIT)
    assert await store.get("k") is None
    assert await store.hgetall("h") == {}
    assert await store.expire("k", LONG) is False


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf])
async def test_invalid_ttl_rejected(store: Store, ttl: float) -> None:
    with pytest.raises(ValueError):
        await store.set("k", b"v", ttl=ttl)
    with pytest.raises(ValueError):
        await store.expire("k", ttl)
    with pytest.raises(ValueError):
        await store.incr("k", ttl=ttl)
    with pytest.raises(ValueError):
        await store.hset("k", {"f": 1}, ttl=ttl)
    assert await store.ttl("k") is None  # nothing was written


async def test_delete_counts_existing_keys_of_any_kind(store: Store) -> None:
    await store.set("s", b"v")
    await store.hset("h", {"f": "v"})
    await store.sadd("set", "m")
    await store.incr("n")
    assert await store.delete() == 0
    assert await store.delete("s", "h", "set", "n", "missing", "s") == 4
    assert await store.get("s") is None
    assert await store.delete("s") == 0


# -- hashes ------------------------------------------------------------------------------------


async def test_hash_fields(store: Store) -> None:
    assert await store.hgetall("conn") == {}
    await store.hset("conn", {"node": "n1", "stage": b"prod", "at": 1700000000000})
    await store.hset("conn", {"stage": "dev", "user": "é"})
    assert await store.hgetall("conn") == {
        "node": b"n1",
        "stage": b"dev",
        "at": b"1700000000000",
        "user": "é".encode(),
    }
    assert await store.hdel("conn", "node", "nope") == 1
    assert await store.hdel("conn") == 0
    assert await store.hdel("missing", "f") == 0


async def test_hash_removing_last_field_deletes_key(store: Store) -> None:
    await store.hset("h", {"a": b"1"})
    assert await store.hdel("h", "a") == 1
    assert await store.ttl("h") is None
    await store.hset("h", {})  # writes nothing, creates nothing
    assert await store.ttl("h") is None


async def test_hash_values_are_bytes_str_or_int(store: Store) -> None:
    with pytest.raises(TypeError):
        await store.hset("h", {"flag": True})
    with pytest.raises(TypeError):
        await store.hset("h", {"x": 1.5})  # type: ignore[dict-item]
    assert await store.hgetall("h") == {}


async def test_hset_ttl_sets_and_plain_hset_keeps_it(store_env: StoreEnv) -> None:
    store = store_env.store
    await store.hset("h", {"a": 1}, ttl=SHORT)
    await store.hset("h", {"b": 2})  # changing a hash keeps its TTL
    await store.hset("kept", {"a": 1}, ttl=LONG)
    await store_env.advance(WAIT)
    assert await store.hgetall("h") == {}
    assert await store.hgetall("kept") == {"a": b"1"}


# -- sets --------------------------------------------------------------------------------------


async def test_set_members(store: Store) -> None:
    assert await store.smembers("chan") == set()
    assert await store.scard("chan") == 0
    assert await store.sadd("chan", "c1", "c2", "c1") == 2
    assert await store.sadd("chan", "c2", "c3") == 1
    assert await store.sadd("chan") == 0
    assert await store.smembers("chan") == {"c1", "c2", "c3"}
    assert await store.scard("chan") == 3
    assert await store.srem("chan", "c1", "zz") == 1
    assert await store.srem("chan") == 0
    assert await store.srem("chan", "c2", "c3") == 2
    assert await store.ttl("chan") is None  # empty set = no key
    assert await store.srem("missing", "x") == 0


async def test_sadd_ttl(store_env: StoreEnv) -> None:
    store = store_env.store
    await store.sadd("s", "a", ttl=SHORT)
    await store.sadd("s", "b")
    await store_env.advance(WAIT)
    assert await store.smembers("s") == set()


# -- counters ----------------------------------------------------------------------------------


async def test_incr(store: Store) -> None:
    assert await store.incr("n") == 1
    assert await store.incr("n", 41) == 42
    assert await store.incr("n", -50) == -8
    assert await store.get("n") == b"-8"
    await store.set("m", b"41")
    assert await store.incr("m") == 42


async def test_incr_ttl_applies_only_on_creation(store_env: StoreEnv) -> None:
    store = store_env.store
    assert await store.incr("day", ttl=SHORT) == 1
    assert await store.incr("day", ttl=LONG) == 2  # must not extend the window
    assert await store.incr("day") == 3
    await store_env.advance(WAIT)
    assert await store.get("day") is None
    assert await store.incr("day", ttl=LONG) == 1
    assert await store.incr("plain", 5) == 5
    assert await store.ttl("plain") == math.inf


@pytest.mark.parametrize("value", [b"abc", b" 1", b"1 ", b"+1", b"01", b"1.5", b"", b"99999999999999999999"])
async def test_incr_non_integer_is_a_store_error(store: Store, value: bytes) -> None:
    await store.set("n", value)
    with pytest.raises(StoreError) as caught:
        await store.incr("n")
    assert not isinstance(caught.value, StoreUnavailable)
    assert await store.get("n") == value


async def test_incr_overflow(store: Store) -> None:
    await store.set("n", str(2**63 - 1).encode())
    with pytest.raises(StoreError):
        await store.incr("n")
    with pytest.raises(ValueError):
        await store.incr("n", 2**63)
    await store.set("n", str(-(2**63)).encode())
    assert await store.incr("n", 0) == -(2**63)
    with pytest.raises(StoreError):
        await store.incr("n", -1)


async def test_concurrent_incr_is_atomic(store: Store) -> None:
    results = await asyncio.gather(*(store.incr("n", ttl=LONG) for _ in range(200)))
    assert sorted(results) == list(range(1, 201))


# -- wrong kinds -------------------------------------------------------------------------------


async def test_wrong_kind_is_a_store_error(store: Store) -> None:
    await store.set("str", b"v")
    await store.hset("hash", {"f": b"v"})
    await store.sadd("set", "m")
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get("hash"),
        lambda: store.hset("str", {"f": b"v"}),
        lambda: store.hgetall("set"),
        lambda: store.hdel("str", "f"),
        lambda: store.sadd("hash", "m"),
        lambda: store.srem("str", "m"),
        lambda: store.smembers("hash"),
        lambda: store.scard("str"),
        lambda: store.incr("set"),
        lambda: store.take("str", rate=1, burst=1, now=0.0),
        lambda: store.take("set", rate=1, burst=1, now=0.0),
    ]
    for attempt in attempts:
        with pytest.raises(StoreError) as caught:
            await attempt()
        assert not isinstance(caught.value, StoreUnavailable)
        assert "WRONGTYPE" in str(caught.value)
    assert await store.get("str") == b"v"


# -- lifecycle ---------------------------------------------------------------------------------


async def test_close_is_idempotent_and_final(store_env: StoreEnv) -> None:
    other = await store_env.make()
    await other.set("k", b"v")
    sub = other.subscribe("c")
    await sub.ready()
    await other.close()
    await other.close()
    assert await other.ping() is False
    with pytest.raises(StoreUnavailable):
        await other.get("k")
    with pytest.raises(StoreUnavailable):
        await other.take("b", rate=1, burst=1, now=0.0)
    with pytest.raises(StoreUnavailable):
        other.subscribe("c")
    assert [m async for m in sub] == []  # the store's close ended its subscriptions


async def test_subscription_is_a_subscription(store: Store) -> None:
    sub = store.subscribe("a")
    assert isinstance(sub, Subscription)
    assert sub.channels == ("a",)
    await sub.close()
    with pytest.raises(ValueError):
        store.subscribe()

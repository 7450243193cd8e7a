"""The store contract for the response cache (``cache_get``/``cache_put``/``cache_flush``), on
the embedded store and on a real Redis; then the embedded store's memory bound (LRU)."""

from __future__ import annotations

import pytest

from server.store.base import Store, StoreUnavailable
from server.store.memory import MemoryStore
from server.store.redis import RedisStore
from tests.store.conftest import FakeClock, StoreEnv

SHORT = 0.05
WAIT = 0.15
LONG = 100.0


async def test_put_get_roundtrip_binary(store: Store) -> None:
    assert await store.cache_get("api/dev/k") is None
    await store.cache_put("api/dev/k", b"\x00\xff entry \r\n", ttl=LONG)
    assert await store.cache_get("api/dev/k") == b"\x00\xff entry \r\n"
    await store.cache_put("api/dev/k", b"replaced", ttl=LONG)
    assert await store.cache_get("api/dev/k") == b"replaced"


async def test_entries_expire(store_env: StoreEnv) -> None:
    store = store_env.store
    await store.cache_put("a/dev/short", b"v", ttl=SHORT)
    await store.cache_put("a/dev/long", b"v", ttl=LONG)
    await store_env.advance(WAIT)
    assert await store.cache_get("a/dev/short") is None
    assert await store.cache_get("a/dev/long") == b"v"


async def test_cache_is_its_own_key_space(store: Store) -> None:
    await store.set("a/dev/k", b"plain")
    await store.cache_put("a/dev/k", b"cached", ttl=LONG)
    assert await store.get("a/dev/k") == b"plain"
    assert await store.cache_get("a/dev/k") == b"cached"
    assert await store.delete("a/dev/k") == 1
    assert await store.cache_get("a/dev/k") == b"cached"


async def test_flush_drops_one_prefix_only(store: Store) -> None:
    for key in ("api/dev/1", "api/dev/2", "api/prod/1", "api/devx/1", "*/dev/1"):
        await store.cache_put(key, b"v", ttl=LONG)
    assert await store.cache_flush("api/dev/") == 2
    assert await store.cache_get("api/dev/1") is None
    assert await store.cache_get("api/dev/2") is None
    assert await store.cache_get("api/prod/1") == b"v"
    assert await store.cache_get("api/devx/1") == b"v"
    # Glob characters in a prefix are literal: "*/" does not match every stage.
    assert await store.cache_flush("*/dev/") == 1
    assert await store.cache_get("api/prod/1") == b"v"
    assert await store.cache_flush("api/dev/") == 0


async def test_flush_many_entries(store: Store) -> None:
    for index in range(2500):  # more than one SCAN/UNLINK batch on Redis
        await store.cache_put(f"big/dev/{index}", b"v", ttl=LONG)
    assert await store.cache_flush("big/dev/") == 2500
    assert await store.cache_get("big/dev/7") is None


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
async def test_invalid_ttl_rejected(store: Store, ttl: float) -> None:
    with pytest.raises(ValueError):
        await store.cache_put("a/dev/k", b"v", ttl=ttl)


async def test_closed_store_refuses(store_env: StoreEnv) -> None:
    store = await store_env.make()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.cache_get("a/dev/k")
    with pytest.raises(StoreUnavailable):
        await store.cache_put("a/dev/k", b"v", ttl=LONG)


@pytest.mark.redis
async def test_nodes_sharing_redis_share_entries(clean_redis_url: str) -> None:
    one, two = RedisStore(clean_redis_url), RedisStore(clean_redis_url)
    for store in (one, two):
        await store.start()
    try:
        await one.cache_put("a/dev/k", b"shared", ttl=LONG)
        assert await two.cache_get("a/dev/k") == b"shared"
        assert await two.cache_flush("a/dev/") == 1
        assert await one.cache_get("a/dev/k") is None
    finally:
        await one.close()
        await two.close()


# -- the embedded store's bound ----------------------------------------------------------------


async def test_embedded_cache_is_bounded_and_evicts_least_recently_used() -> None:
    store = MemoryStore(clock=FakeClock(), cache_max_bytes=4 * (1000 + 128 + 8))
    await store.start()
    for name in ("k0001", "k0002", "k0003", "k0004"):
        await store.cache_put(name, b"x" * 1000, ttl=LONG)
    assert await store.cache_get("k0001") is not None  # now the most recently used
    await store.cache_put("k0005", b"x" * 1000, ttl=LONG)
    assert await store.cache_get("k0002") is None  # the least recently used went
    assert all([await store.cache_get(k) for k in ("k0001", "k0003", "k0004", "k0005")])
    await store.cache_put("huge", b"x" * 10_000, ttl=LONG)  # larger than the bound: not kept
    assert await store.cache_get("huge") is None
    assert await store.cache_get("k0005") is not None
    await store.close()

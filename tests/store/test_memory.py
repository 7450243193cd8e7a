"""What only the embedded store has: a fake clock, and expiry without a background task."""

from __future__ import annotations

import pytest

from server.store.memory import MemoryStore
from server.throttle.admit import BucketSpec
from tests.store.conftest import FakeClock


async def test_untouched_expired_keys_are_swept_by_later_writes() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(100):
        await store.set(f"old{i}", b"v", ttl=1)
    clock.advance(2)
    for i in range(10):  # each write removes a bounded batch of expired keys
        await store.set(f"new{i}", b"v")
    assert len(store._data) == 10


async def test_refreshing_ttls_does_not_grow_the_deadline_heap() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.hset("conn", {"node": "n1"})
    for _ in range(10_000):  # an idle timeout refreshed on every message
        await store.expire("conn", 600)
    assert len(store._deadlines) <= 2 * len(store._data) + 1024 + 1


async def test_deadlines_that_only_move_later_push_nothing_yet_expire() -> None:
    """A bucket rewritten by every request keeps one heap record; the sweep re-queues it."""
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    spec = BucketSpec("{tb}:b", 1.0, 1000)
    for i in range(5000):
        await store.admit([spec], now=float(i) / 10, cost=2)
        clock.advance(0.1)
    assert len(store._deadlines) == 1
    ttl = await store.ttl(spec.key)
    assert ttl is not None
    clock.advance(ttl - 1)
    await store.set("other", b"v")  # a write sweeps: the record was early, so it is re-queued
    assert await store.ttl(spec.key) is not None
    clock.advance(2)
    await store.set("another", b"v")
    assert spec.key not in store._data  # swept without being touched


async def test_bucket_state_expires_on_the_store_clock() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.take("b", rate=1, burst=1, now=0.0)
    assert await store.ttl("b") == 1.0
    clock.advance(1.0)
    assert await store.ttl("b") is None


async def test_closed_store_rejects_everything() -> None:
    store = MemoryStore()
    await store.close()
    with pytest.raises(Exception, match="closed"):
        await store.start()


def test_buffer_must_hold_a_message() -> None:
    store = MemoryStore(buffer=0)
    with pytest.raises(ValueError):
        store.subscribe("c")

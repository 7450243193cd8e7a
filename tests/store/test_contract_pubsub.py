"""Pub/sub on both stores: in process for the embedded store, across nodes for Redis."""

from __future__ import annotations

import asyncio

from server.store.base import Store, Subscription
from tests.store.conftest import StoreEnv, eventually, next_message


async def _publish_count_becomes(store: Store, channel: str, expected: int) -> None:
    # Redis drops a closed subscriber when it reads the socket close, a moment after close().
    async def check() -> bool:
        return await store.publish(channel, b"probe") == expected

    await eventually(check)


async def test_publish_reaches_subscriber(store: Store) -> None:
    assert await store.publish("nobody", b"x") == 0
    async with store.subscribe("c1", "c2", "c1") as sub:
        assert sub.channels == ("c1", "c2")
        assert await store.publish("c1", b"one") == 1
        assert await store.publish("c2", b"\x00two") == 1
        assert await store.publish("other", b"no") == 0
        assert await next_message(sub) == ("c1", b"one")
        assert await next_message(sub) == ("c2", b"\x00two")


async def test_every_subscriber_gets_a_copy_in_order(store: Store) -> None:
    first, second = store.subscribe("c"), store.subscribe("c")
    await first.ready()
    await second.ready()
    for i in range(50):
        assert await store.publish("c", b"%d" % i) == 2
    for sub in (first, second):
        assert [(await next_message(sub))[1] for _ in range(50)] == [b"%d" % i for i in range(50)]
        await sub.close()


async def test_close_ends_iteration_and_unsubscribes(store: Store) -> None:
    sub = store.subscribe("c")
    await sub.ready()
    received: list[tuple[str, bytes]] = []

    async def consume() -> None:
        async for message in sub:
            received.append(message)

    task = asyncio.create_task(consume())
    await store.publish("c", b"before")
    await eventually(lambda: bool(received))
    await sub.close()
    await sub.close()  # idempotent
    async with asyncio.timeout(5):
        await task
    assert received == [("c", b"before")]
    await _publish_count_becomes(store, "c", 0)


async def test_slow_consumer_drops_oldest(store_env: StoreEnv) -> None:
    store = await store_env.make(buffer=3)
    sub = store.subscribe("c")
    await sub.ready()
    for i in range(5):
        await store.publish("c", b"%d" % i)
    # Redis delivers asynchronously: wait until all five went through the buffer.
    await eventually(lambda: sub.dropped >= 2)
    assert [(await next_message(sub))[1] for _ in range(3)] == [b"2", b"3", b"4"]
    assert sub.dropped == 2
    await sub.close()


async def test_subscription_created_before_loop_work(store: Store) -> None:
    sub = store.subscribe("late")
    await asyncio.sleep(0)  # nothing is delivered before ready() for Redis; the contract allows it
    await sub.ready()
    await store.publish("late", b"x")
    assert await next_message(sub) == ("late", b"x")
    await sub.close()


async def test_closing_a_subscription_while_it_connects_never_hangs(store: Store) -> None:
    """A subscriber cancelled at any point of its start-up (on Redis: inside redis-py's connect,
    where a cancellation can be swallowed) still lets the subscription and the store close."""

    async def enter(sub: Subscription) -> None:
        async with sub:
            await asyncio.Event().wait()

    for yields in range(0, 40, 3):
        sub = store.subscribe("closing")
        task = asyncio.create_task(enter(sub))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        async with asyncio.timeout(10):
            await asyncio.gather(task, return_exceptions=True)
            await sub.close()

"""Fixtures of the store contract suite: every ``store_env`` test runs on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from server.store.base import Store, Subscription
from server.store.memory import MemoryStore
from server.store.redis import RedisStore
from server.store.redis_cluster import RedisClusterStore


class FakeClock:
    """An injectable ``time.monotonic`` that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class StoreEnv:
    """A started store plus the means to let its TTLs run out.

    ``advance`` moves the embedded store's fake clock, or really sleeps for Redis (whose
    expiry runs on its own clock): tests use TTLs of a few tens of milliseconds for Redis.
    ``make`` builds another store of the same kind (same Redis for the Redis one), started,
    and closed at teardown.
    """

    kind: str
    store: Store
    advance: Callable[[float], Awaitable[None]]
    make: Callable[..., Awaitable[Store]]
    _extra: list[Store] = field(default_factory=list)


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    if request.param == "redis":
        url: str = request.getfixturevalue("clean_redis_url")
        return "redis", url
    if request.param == "redis-cluster":  # a local 3-master Redis Cluster
        url = request.getfixturevalue("clean_redis_cluster_url")
        return "redis-cluster", url
    return "embedded", None


@pytest.fixture
async def store_env(backend: tuple[str, str | None]) -> AsyncIterator[StoreEnv]:
    kind, url = backend
    clock = FakeClock()
    extra: list[Store] = []

    async def make(**options: Any) -> Store:
        new: Store
        if url is None:
            new = MemoryStore(clock=options.pop("clock", clock), **options)
        elif kind == "redis-cluster":
            new = RedisClusterStore(url, **options)
        else:
            new = RedisStore(url, **options)
        await new.start()
        extra.append(new)
        return new

    async def advance(seconds: float) -> None:
        if url is None:
            clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    store = await make()
    yield StoreEnv(kind, store, advance, make, extra)
    for each in extra:
        await each.close()


@pytest.fixture
def store(store_env: StoreEnv) -> Store:
    return store_env.store


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 5.0) -> None:
    """Poll ``check`` until true; fail after ``within`` seconds (for effects Redis applies
    asynchronously, such as dropping a closed subscriber)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


async def next_message(sub: Subscription) -> tuple[str, bytes]:
    """The next message, or fail after 5 s rather than hang the suite."""
    async with asyncio.timeout(5):
        return await anext(aiter(sub))

"""What only the Redis store has: a namespace, several nodes, and a server that can go away."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.store.base import StoreError, StoreUnavailable
from server.store.redis import RedisStore
from tests.redis_fixture import RedisServer, free_port, resp_command
from tests.store.conftest import eventually, next_message
from tests.store.fake_redis import FakeRedis

pytestmark = pytest.mark.redis


@pytest.fixture
async def node(clean_redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(clean_redis_url)
    await store.start()
    yield store
    await store.close()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def test_keys_and_channels_are_namespaced(clean_redis_url: str) -> None:
    a, b = RedisStore(clean_redis_url), RedisStore(clean_redis_url, namespace="other:")
    try:
        await a.set("k", b"a")
        await a.hset("h", {"f": 1})
        await a.take("bucket", rate=1, burst=5, now=0.0)
        await b.set("k", b"b")
        port = _port(clean_redis_url)
        assert resp_command(port, "GET", "portway:k") == b"a"
        assert resp_command(port, "GET", "other:k") == b"b"
        assert resp_command(port, "TYPE", "portway:h") == b"hash"
        assert resp_command(port, "EXISTS", "portway:bucket") == 1
        assert resp_command(port, "DBSIZE") == 4
        async with b.subscribe("c") as sub:
            assert await a.publish("c", b"x") == 0  # "portway:c" has nobody
            assert await b.publish("c", b"y") == 1
            assert await next_message(sub) == ("c", b"y")
    finally:
        await a.close()
        await b.close()


async def test_two_nodes_share_state_and_messages(node: RedisStore, clean_redis_url: str) -> None:
    other = RedisStore(clean_redis_url)
    try:
        await node.hset("conn:abc", {"node": "n1"}, ttl=60)
        assert await other.hgetall("conn:abc") == {"node": b"n1"}
        both = [node.take("b", rate=0.001, burst=3, now=0.0) for _ in range(3)]
        both += [other.take("b", rate=0.001, burst=3, now=0.0) for _ in range(3)]
        assert sum(d.allowed for d in await asyncio.gather(*both)) == 3
        async with other.subscribe("node:n2") as sub:
            assert await node.publish("node:n2", b"post") == 1
            assert await next_message(sub) == ("node:n2", b"post")
    finally:
        await other.close()


async def test_errors_keep_their_cause(node: RedisStore) -> None:
    await node.set("s", b"v")
    with pytest.raises(StoreError) as caught:
        await node.sadd("s", "m")
    assert type(caught.value) is StoreError
    assert isinstance(caught.value.__cause__, ResponseError)


async def test_lost_script_cache_falls_back_to_eval(node: RedisStore, clean_redis_url: str) -> None:
    assert (await node.take("b", rate=1, burst=2, now=0.0)).remaining == 1
    resp_command(_port(clean_redis_url), "SCRIPT", "FLUSH")
    assert (await node.take("b", rate=1, burst=2, now=0.0)).remaining == 0
    assert resp_command(_port(clean_redis_url), "SCRIPT", "EXISTS", "x") == [0]


async def test_incr_ttl_is_set_atomically_with_creation(node: RedisStore, clean_redis_url: str) -> None:
    assert await node.incr("q", 3, ttl=86_400) == 3
    pttl = resp_command(_port(clean_redis_url), "PTTL", "portway:q")
    assert isinstance(pttl, int) and 86_000_000 < pttl <= 86_400_000


# -- an unreachable or misbehaving server ------------------------------------------------------


async def test_unreachable_server_fails_fast_then_recovers(tmp_path: object) -> None:
    server = RedisServer(tmp_path, port=free_port())  # type: ignore[arg-type]
    store = RedisStore(server.url, timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await store.start()
        assert isinstance(caught.value.__cause__, RedisConnectionError)
        with pytest.raises(StoreUnavailable):
            await store.take("b", rate=1, burst=1, now=0.0)
        assert await store.ping() is False
        assert time.monotonic() - started < 2
        await asyncio.to_thread(server.start)
        assert await store.ping() is True
        assert await store.set("k", b"v") is True
    finally:
        await store.close()
        server.stop()


async def test_stalled_server_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeRedis(reply=None) as fake:
        store = RedisStore(fake.url, timeout=0.2)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                await store.incr("k")
            assert time.monotonic() - started < 1.5
            assert isinstance(caught.value.__cause__, RedisTimeoutError)
            assert await store.ping() is False
            # get() goes through the pipelined connection: bounded the same way.
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.get("k")
            assert time.monotonic() - started < 1.5
        finally:
            await store.close()


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        (b"-LOADING Redis is loading the dataset in memory\r\n", BusyLoadingError),
        (b"-READONLY You can't write against a read only replica.\r\n", ReadOnlyError),
        (b"-MASTERDOWN Link with MASTER is down\r\n", ResponseError),
        (b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n", ResponseError),
    ],
)
async def test_transient_replies_mean_unavailable(reply: bytes, cause: type[Exception]) -> None:
    async with FakeRedis(reply) as fake:
        store = RedisStore(fake.url, timeout=0.5)
        try:
            with pytest.raises(StoreUnavailable) as caught:
                await store.incr("n")
            assert isinstance(caught.value.__cause__, cause)
        finally:
            await store.close()


async def test_down_then_up_without_restarting_the_store(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, timeout=0.5)
    sub = store.subscribe("c")
    try:
        await store.start()
        await asyncio.gather(*(store.set(f"k{i}", b"v") for i in range(10)))  # fill the pool
        await sub.ready()
        await asyncio.to_thread(redis_server.stop)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.get("k1")
        assert await store.ping() is False
        assert time.monotonic() - started < 2
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await sub.ready()  # not subscribed while Redis is down
        await asyncio.to_thread(redis_server.start)
        assert await store.get("k1") is None  # no persistence: a fresh, empty server
        async with asyncio.timeout(10):
            await sub.ready()
        assert await store.publish("c", b"back") == 1
        assert await next_message(sub) == ("c", b"back")
    finally:
        await sub.close()
        await store.close()


async def test_restart_mid_test_is_invisible_to_callers(redis_server: RedisServer) -> None:
    """Redis restarted under live traffic: the next calls succeed, the subscription returns."""
    store = RedisStore(redis_server.url, timeout=1.0)
    try:
        await store.start()
        sub = store.subscribe("events")
        await sub.ready()
        # Several pooled connections, all of which the restart breaks.
        await asyncio.gather(*(store.incr("n") for _ in range(20)))
        assert (await store.take("b", rate=1, burst=1, now=0.0)).allowed
        await asyncio.to_thread(redis_server.restart)
        # No StoreUnavailable: a broken pooled connection is retried once on a new one, and
        # the bucket script is re-sent after the server forgot it.
        results = await asyncio.gather(*(store.incr("n") for _ in range(20)))
        assert sorted(results) == list(range(1, 21))
        assert (await store.take("b", rate=1, burst=1, now=0.0)).allowed

        async def delivered() -> bool:
            return await store.publish("events", b"after") == 1

        await eventually(delivered, within=10)
        assert await next_message(sub) == ("events", b"after")
        assert sub.reconnects == 1
        await sub.close()
    finally:
        await store.close()


async def test_silent_peer_is_detected_by_ping(redis_server: RedisServer) -> None:
    """A pub/sub connection that stops answering (no FIN: host gone) is replaced."""
    store = RedisStore(redis_server.url, timeout=0.2, ping_interval=0.1)
    try:
        async with store.subscribe("c") as sub:
            assert sub.active
            resp_command(redis_server.port, "CLIENT", "PAUSE", "600", "ALL")  # reads stall
            await eventually(lambda: not sub.active, within=5)
            async with asyncio.timeout(10):
                await sub.ready()
            assert await store.publish("c", b"x") == 1
            assert await next_message(sub) == ("c", b"x")
            assert sub.reconnects >= 1
    finally:
        await store.close()


async def test_ttl_of_a_missing_and_a_persistent_key(node: RedisStore) -> None:
    assert await node.ttl("nope") is None
    await node.sadd("s", "m")
    assert await node.ttl("s") == math.inf


async def test_raw_client_view_of_a_bucket(node: RedisStore, clean_redis_url: str) -> None:
    client = aioredis.Redis.from_url(clean_redis_url, protocol=2)
    try:
        await node.take("b", rate=2, burst=4, now=100.0, cost=3)
        assert await client.hgetall("portway:b") == {b"t": b"1", b"s": b"100"}
        assert 0 < await client.pttl("portway:b") <= 1500
    finally:
        await client.aclose()

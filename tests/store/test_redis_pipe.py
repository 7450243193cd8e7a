"""The pipelined client under admit: a Redis that is down, restarted, stalled, or talking nonsense."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from server.store.base import StoreError, StoreUnavailable
from server.store.lua import ADMIT
from server.store.redis import RedisStore
from server.throttle.admit import BucketSpec
from tests.redis_fixture import RedisServer, free_port, resp_command
from tests.store.conftest import eventually
from tests.store.fake_redis import FakeRedis

pytestmark = pytest.mark.redis

T0 = 1_700_000_000.0
SPECS = [BucketSpec("{tb}:k", 0.0, 1000)]


async def admit_ok(store: RedisStore) -> bool:
    try:
        return (await store.admit(SPECS, now=T0)).allowed
    except StoreUnavailable:
        return False


async def test_down_fails_fast_then_recovers(tmp_path: object) -> None:
    server = RedisServer(tmp_path, port=free_port())  # type: ignore[arg-type]
    store = RedisStore(server.url, timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await store.admit(SPECS, now=T0)
        assert isinstance(caught.value.__cause__, ConnectionError)
        for _ in range(100):  # no connect storm: calls fail at once for a while
            with pytest.raises(StoreUnavailable):
                await store.admit(SPECS, now=T0)
        assert time.monotonic() - started < 2
        await asyncio.to_thread(server.start)
        await eventually(lambda: admit_ok(store))
        assert (await store.admit(SPECS, now=T0)).remaining == (998.0,)
    finally:
        await store.close()
        server.stop()


async def test_restart_under_traffic_then_works_again(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, timeout=1.0)
    try:
        await store.start()
        assert (
            sum(d.allowed for d in await asyncio.gather(*(store.admit(SPECS, now=T0) for _ in range(50))))
            == 50
        )
        await asyncio.to_thread(redis_server.restart)
        await eventually(lambda: admit_ok(store))
        # A new server: state and script cache are gone; the script was loaded again.
        assert (await store.admit(SPECS, now=T0)).remaining == (998.0,)
    finally:
        await store.close()


async def test_in_flight_calls_fail_when_the_connection_drops(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, timeout=10.0)
    try:
        await store.start()
        assert await admit_ok(store)
        resp_command(redis_server.port, "CLIENT", "PAUSE", "10000", "ALL")
        calls = [asyncio.ensure_future(store.admit(SPECS, now=T0)) for _ in range(20)]
        await asyncio.sleep(0)  # let them be written
        started = time.monotonic()
        await asyncio.to_thread(redis_server.stop)
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert time.monotonic() - started < 5  # the lost connection, not the 10 s timeout
        await asyncio.to_thread(redis_server.start)
        await eventually(lambda: admit_ok(store))
    finally:
        await store.close()


async def test_stalled_server_times_out() -> None:
    async with FakeRedis(reply=None) as fake:
        store = RedisStore(fake.url, timeout=0.2)
        try:
            started = time.monotonic()
            results = await asyncio.gather(
                *(store.admit(SPECS, now=T0) for _ in range(5)), return_exceptions=True
            )
            assert all(isinstance(r, StoreUnavailable) for r in results)
            assert isinstance(results[0].__cause__, TimeoutError)  # type: ignore[union-attr]
            assert time.monotonic() - started < 1.5
        finally:
            await store.close()


async def test_silent_handshake_is_bounded_by_the_connect_timeout() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # reads, never answers

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.admit(SPECS, now=T0)
        assert time.monotonic() - started < 1.5
    finally:
        await store.close()
        server.close()
        for writer in writers:  # Python 3.11's wait_closed() does not wait for handlers
            writer.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"-LOADING Redis is loading the dataset in memory\r\n", StoreUnavailable),
        (b"-READONLY You can't write against a read only replica.\r\n", StoreUnavailable),
        (b"-ERR unknown command\r\n", StoreError),
        (b"-NOSCRIPT No matching script\r\n", StoreError),  # retried once, then given up
        (b"?not resp\r\n", StoreUnavailable),
    ],
)
async def test_error_replies(reply: bytes, error: type[Exception]) -> None:
    async with FakeRedis(reply) as fake:
        store = RedisStore(fake.url, timeout=0.5)
        try:
            with pytest.raises(error) as caught:
                await store.admit(SPECS, now=T0)
            assert (type(caught.value) is StoreError) == (error is StoreError)
            evalsha = [c for c in fake.commands if c[0] == b"EVALSHA"]
            assert len(evalsha) == (2 if b"NOSCRIPT" in reply else 1)
        finally:
            await store.close()


async def test_lost_script_cache_is_reloaded_transparently(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    try:
        assert await admit_ok(store)
        resp_command(redis_server.port, "SCRIPT", "FLUSH")
        results = await asyncio.gather(*(store.admit(SPECS, now=T0) for _ in range(10)))
        assert sorted(d.remaining[0] for d in results) == list(range(989, 999))
        assert resp_command(redis_server.port, "SCRIPT", "EXISTS", ADMIT.sha) == [1]
    finally:
        await store.close()


async def test_a_cancelled_caller_does_not_disturb_the_others(clean_redis_url: str) -> None:
    store = RedisStore(clean_redis_url)
    try:
        await store.start()
        tasks = [asyncio.ensure_future(store.admit(SPECS, now=T0)) for _ in range(5)]
        await asyncio.sleep(0)
        tasks[2].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[2], asyncio.CancelledError)
        # The cancelled call was sent and ran (a decision cannot be unsent); each other caller
        # got its own reply, in order.
        assert [r.remaining for r in results if not isinstance(r, BaseException)] == [
            (999.0,),
            (998.0,),
            (996.0,),
            (995.0,),
        ]
    finally:
        await store.close()


async def test_password_and_database_from_the_url(redis_server: RedisServer) -> None:
    resp_command(redis_server.port, "CONFIG", "SET", "requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{redis_server.port}/3"
    store, wrong = RedisStore(url), RedisStore(url.replace("s3cret", "nope"))
    raw = aioredis.Redis.from_url(url, protocol=2)
    try:
        assert await admit_ok(store)
        assert await raw.exists("portway:{tb}:k") == 1  # in database 3
        with pytest.raises(StoreUnavailable):
            await wrong.admit(SPECS, now=T0)
    finally:
        await raw.aclose()
        await store.close()
        await wrong.close()


async def test_close_fails_queued_and_later_calls(clean_redis_url: str) -> None:
    store = RedisStore(clean_redis_url)
    pending = asyncio.ensure_future(store.admit(SPECS, now=T0))  # queued, connecting
    await asyncio.sleep(0)
    await store.close()
    with pytest.raises(StoreUnavailable):
        await pending
    with pytest.raises(StoreUnavailable):
        await store.admit(SPECS, now=T0)


@pytest.fixture
async def node(clean_redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(clean_redis_url)
    await store.start()
    yield store
    await store.close()


async def test_one_connection_serves_every_admit(node: RedisStore, clean_redis_url: str) -> None:
    await asyncio.gather(*(node.admit(SPECS, now=T0) for _ in range(300)))
    await asyncio.gather(*(node.admit(SPECS, now=T0) for _ in range(300)))
    clients = resp_command(int(clean_redis_url.rsplit(":", 1)[1].split("/")[0]), "CLIENT", "LIST")
    assert isinstance(clients, bytes) and clients.count(b"name=portway-pipe") == 1

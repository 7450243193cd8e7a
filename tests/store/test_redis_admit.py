"""Store.admit on Redis: ADMIT_LUA is admit_state bit for bit, touches only its KEYS (Cluster),
and N nodes sharing one Redis admit exactly the allowance."""

from __future__ import annotations

import asyncio
import math
import random
import re
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server.store.bucket import BucketState
from server.store.lua import ADMIT
from server.store.redis import RedisStore
from server.store.redis_admit import AdmitCodec
from server.throttle.admit import BucketSpec, QuotaSpec, UsageSpec, admit_state, throttle_key
from tests.redis_fixture import HOST, RedisReplyError, resp_command

pytestmark = pytest.mark.redis

NS = "portway:"
T0 = 1_700_000_000.0


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
def bucket_with_state(draw: st.DrawFn, index: int) -> tuple[BucketSpec, BucketState | None]:
    rate = draw(st.one_of(st.just(0.0), _floats(0.0, 1e7)))
    burst = draw(st.one_of(st.integers(0, 20), st.integers(0, 2**53)))
    tokens = draw(_floats(0.0, max(1.0, burst * 1.5)))  # above burst: burst was lowered
    state = draw(st.one_of(st.none(), st.just(BucketState(tokens, draw(_floats(-1e10, 1e10))))))
    return BucketSpec(throttle_key("b", str(index)), rate, burst), state


counts = st.one_of(st.integers(0, 30), st.integers(-(2**53), 2**53))


@st.composite
def calls(draw: st.DrawFn) -> tuple[list[tuple[BucketSpec, BucketState | None]], ...]:
    n = draw(st.integers(0, 4))
    buckets = [draw(bucket_with_state(i)) for i in range(n)]
    quota = draw(
        st.one_of(st.none(), st.tuples(st.one_of(st.integers(0, 30), st.integers(0, 2**53)), counts))
    )
    usage = draw(st.one_of(st.none(), counts))
    now = draw(_floats(-1e10, 1e10))
    cost = draw(st.one_of(st.integers(0, 25), st.integers(0, 2**53)))
    return buckets, quota, usage, now, cost  # type: ignore[return-value]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=calls())
@example(call=([(BucketSpec("{tb}:b:0", 0.1, 1), BucketState(0.1, 0.0))], None, None, 3.0, 1))
@example(call=([(BucketSpec("{tb}:b:0", 1e-300, 1), BucketState(5e-324, 1.0))], (5, 5), 2**53, 2.0, 1))
@example(call=([], (2**53, 2**53 - 1), None, 0.0, 2**53))  # quota sums beyond 2**53 stay exact
async def test_lua_matches_python(stores: tuple[RedisStore, aioredis.Redis], call: tuple) -> None:  # type: ignore[type-arg]
    """One admit from arbitrary saved states: decision, states, counters and TTLs agree."""
    store, raw = stores
    buckets_states, quota_args, usage_count, now, cost = call
    specs = [spec for spec, _ in buckets_states]
    states = [state for _, state in buckets_states]
    quota = None if quota_args is None else QuotaSpec(throttle_key("q"), quota_args[0], 600.0)
    usage = None if usage_count is None else UsageSpec(throttle_key("u"), 900.0)
    await raw.flushdb()
    for spec, state in buckets_states:
        if state is not None:
            await raw.set(NS + spec.key, struct.pack("<dd", state.tokens, state.stamp))
    count = 0 if quota_args is None else quota_args[1]
    if quota is not None:
        await raw.set(NS + quota.key, str(count))
    if usage is not None:
        await raw.set(NS + usage.key, str(usage_count))

    new_states, new_count, expected = admit_state(states, count, specs, quota, now=now, cost=cost)
    got = await store.admit(specs, quota, now=now, cost=cost, usage=usage)
    assert got == expected

    for spec, old, new in zip(specs, states, new_states, strict=True):
        blob, pttl = await raw.get(NS + spec.key), await raw.pttl(NS + spec.key)
        if not expected.allowed:  # untouched
            assert blob == (None if old is None else struct.pack("<dd", old.tokens, old.stamp))
            continue
        if new is None:
            assert blob is None
            continue
        wanted = (spec.burst - new.tokens) / spec.rate * 1000 if spec.rate else math.inf
        if blob is None and wanted < 5000:
            continue  # a short-lived state already expired before we read it back
        assert isinstance(blob, bytes)
        assert BucketState(*struct.unpack("<dd", blob)) == new
        assert pttl == -1 if not wanted < 4e15 else math.ceil(wanted) - 5000 <= pttl <= math.ceil(wanted)
    if quota is not None:
        assert await raw.get(NS + quota.key) == str(new_count).encode()
    if usage is not None:
        assert await raw.get(NS + usage.key) == str(usage_count + (cost if expected.allowed else 0)).encode()


_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')


async def test_the_script_touches_only_its_keys(
    stores: tuple[RedisStore, aioredis.Redis], clean_redis_url: str
) -> None:
    """MONITOR shows every command the script runs: each key it names was passed in KEYS."""
    store, _ = stores
    specs = [BucketSpec(throttle_key("k", "1"), 1.0, 2), BucketSpec(throttle_key("acct"), 0.0, 5)]
    quota, usage = QuotaSpec(throttle_key("q"), 5, 60.0), UsageSpec(throttle_key("u"), 60.0)
    reader, writer = await asyncio.open_connection(HOST, int(clean_redis_url.rsplit(":", 1)[1].split("/")[0]))
    try:
        writer.write(b"MONITOR\r\n")
        async with asyncio.timeout(5):
            assert await reader.readline() == b"+OK\r\n"
            # Admitted twice, refused, then cost 0 (buckets only: one full again, one not).
            for now, cost in ((T0, 1), (T0, 1), (T0, 5), (T0 + 10, 0)):
                await store.admit(specs, quota, now=now, cost=cost, usage=usage)
            sentinel = f"sentinel-{uuid.uuid4().hex}"
            await store.get(sentinel)
            lua: list[list[bytes]] = []
            while sentinel.encode() not in (line := await reader.readline()):
                if b"[0 lua]" in line:
                    lua.append(_QUOTED.findall(line))
    finally:
        writer.close()
    given = {(NS + key).encode() for key in (*(s.key for s in specs), quota.key, usage.key)}
    commands = {args[0].upper() for args in lua}
    assert commands == {b"MGET", b"SET", b"INCRBY", b"DEL"}
    for args in lua:
        keys = args[1:] if args[0].upper() == b"MGET" else args[1:2]
        assert set(keys) <= given, args


def _two_free_ports() -> int:
    """A port p with p and p + 10000 (the cluster bus) free a moment ago."""
    for _ in range(100):
        port = random.randint(20_000, 50_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind((HOST, port))
                b.bind((HOST, port + 10_000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports")


def _start_cluster_node(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    for attempt in range(5):  # another process may grab a port first: try others
        port = _two_free_ports()
        args = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        args += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{attempt}.conf"]
        args += ["--dir", str(directory)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                resp_command(port, "CLUSTER", "ADDSLOTSRANGE", "0", "16383", timeout=0.2)
                return proc, port
            except (OSError, RedisReplyError):
                time.sleep(0.01)  # polling, bounded by the deadline
        proc.kill()
        proc.wait()
    pytest.fail("could not start redis-server in cluster mode")


@pytest.fixture
def cluster_port(tmp_path: Path) -> Iterator[int]:
    """A one-node Redis Cluster owning every slot: it enforces the one-slot rule of scripts."""
    proc, port = _start_cluster_node(tmp_path)
    try:
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in cast(bytes, resp_command(port, "CLUSTER", "INFO")):
            assert time.monotonic() < deadline, "one-node cluster never reached cluster_state:ok"
            time.sleep(0.01)  # polling, bounded by the deadline
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


async def test_works_on_redis_cluster(cluster_port: int) -> None:
    store = RedisStore(f"redis://{HOST}:{cluster_port}/0")
    try:
        await store.start()
        specs = [BucketSpec(throttle_key("k", "1"), 1.0, 2), BucketSpec(throttle_key("acct"), 1.0, 5)]
        quota = QuotaSpec(throttle_key("q", "1", "20261125"), 1, 60.0)
        usage = UsageSpec(throttle_key("u", "1", "20261125"), 60.0)
        assert (await store.admit(specs, quota, now=T0, usage=usage)).allowed
        assert (await store.admit(specs, quota, now=T0, usage=usage)).failed == 2
        with pytest.raises(ValueError):  # refused before Redis would answer CROSSSLOT
            await store.admit([BucketSpec("a", 1.0, 1), BucketSpec("b", 1.0, 1)], now=T0)
        # What Redis Cluster says to keys of different slots, as the check above avoids:
        argv = AdmitCodec(NS).argv([BucketSpec("a", 1.0, 1), BucketSpec("b", 1.0, 1)], None, None, T0, 1)
        with pytest.raises(RedisReplyError, match="CROSSSLOT"):
            resp_command(cluster_port, "EVALSHA", ADMIT.sha, "2", "a", "b", argv)
    finally:
        await store.close()


async def test_three_nodes_admit_exactly_the_allowance(clean_redis_url: str) -> None:
    """3 stores (3 gateway nodes) x 2,000 concurrent admits over 3 API keys, 5 levels."""
    nodes = [RedisStore(clean_redis_url) for _ in range(3)]
    account, stage = BucketSpec("{tb}:acct", 0.0, 5000), BucketSpec("{tb}:stage", 0.0, 3000)
    method = BucketSpec("{tb}:method", 0.0, 1000)
    keys = [
        BucketSpec("{tb}:key:0", 0.0, 400),
        BucketSpec("{tb}:key:1", 0.0, 400),
        BucketSpec("{tb}:key:2", 0.0, 400),
    ]
    quota = QuotaSpec("{tb}:q:0", 350, 600.0)  # key 0's plan: its quota binds before its bucket

    def one(i: int) -> tuple[list[BucketSpec], QuotaSpec | None, UsageSpec]:
        k = i % 3
        return [keys[k], method, stage, account], quota if k == 0 else None, UsageSpec(f"{{tb}}:u:{k}", 600.0)

    try:
        for node in nodes:
            await node.start()
        async with asyncio.timeout(30):
            results = await asyncio.gather(
                *(node.admit(*one(i)[:2], now=T0, usage=one(i)[2]) for node in nodes for i in range(2000))
            )
        admitted = [d for d in results if d.allowed]
        assert len(admitted) == 1000  # the method bucket
        assert sorted(d.remaining[1] for d in admitted) == list(range(1000))  # one at a time
        per_key = [sum(1 for i, d in enumerate(results) if d.allowed and i % 2000 % 3 == k) for k in range(3)]
        assert per_key[0] <= 350 and per_key[1] <= 400 and per_key[2] <= 400
        assert {d.failed for d in results if not d.allowed} <= {0, 1, 4}
        check = nodes[0]
        assert [await check.get(f"{{tb}}:u:{k}") for k in range(3)] == [str(n).encode() for n in per_key]
        assert await check.get(quota.key) == str(per_key[0]).encode()
        # Nothing was taken by the 5,000 refused requests: upstream levels lost exactly 1,000.
        assert (await check.admit([stage, account], now=T0, cost=0)).remaining == (2000.0, 4000.0)
    finally:
        for node in nodes:
            await node.close()


async def test_concurrent_calls_are_one_write(stores: tuple[RedisStore, aioredis.Redis]) -> None:
    store, _ = stores
    await store._pipe.connect()
    proto = store._pipe._proto
    assert proto is not None
    writes: list[int] = []
    original = proto.write

    def counting(calls: list[Any], timeout: float) -> None:
        writes.append(len(calls))
        original(calls, timeout)

    proto.write = counting  # type: ignore[method-assign]
    specs = [BucketSpec("{tb}:k", 0.0, 10)]
    results = await asyncio.gather(*(store.admit(specs, now=T0) for _ in range(500)))
    assert writes == [501]  # one SCRIPT LOAD (first use on this connection) + 500 EVALSHA
    assert sum(d.allowed for d in results) == 10
    await asyncio.gather(*(store.admit(specs, now=T0) for _ in range(100)))
    assert writes == [501, 100]


async def test_quota_counts_survive_a_gateway_restart(clean_redis_url: str) -> None:
    quota = QuotaSpec("{tb}:q", 3, 600.0)
    first = RedisStore(clean_redis_url)
    try:
        await first.start()
        assert (await first.admit([], quota, now=T0, cost=2)).quota_used == 2
    finally:
        await first.close()
    second = RedisStore(clean_redis_url)
    try:
        await second.start()
        assert (await second.admit([], quota, now=T0, cost=2)).failed == 0
        assert (await second.admit([], quota, now=T0)).quota_remaining == 0
    finally:
        await second.close()


@given(
    rates=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=0, max_size=4),
    quota=st.one_of(st.none(), st.integers(0, 10**6)),
    usage=st.booleans(),
    now=st.floats(0, 4e9, allow_nan=False),
    cost=st.integers(0, 100),
)
def test_prepared_command_is_the_command(
    rates: list[float], quota: int | None, usage: bool, now: float, cost: int
) -> None:
    """RedisStore.admit sends ``prefix + pack_now(cost, now) + suffix`` for specs it saw before:
    byte for byte the command AdmitCodec.command builds."""
    from server.store.redis_admit import AdmitCodec, pack_now
    from server.throttle.admit import BucketSpec, QuotaSpec, UsageSpec, check_keys, throttle_key

    buckets = [BucketSpec(throttle_key("b", str(i)), rate, 10) for i, rate in enumerate(rates)]
    quota_spec = None if quota is None else QuotaSpec(throttle_key("q"), quota, 100.0)
    usage_spec = UsageSpec(throttle_key("u"), 50.0) if usage else None
    codec = AdmitCodec("ns:")
    keys = check_keys(buckets, quota_spec, usage_spec)
    prefix, suffix = codec.prepare(keys, buckets, quota_spec, usage_spec)
    assert prefix + pack_now(cost, now) + suffix == codec.command(
        keys, buckets, quota_spec, usage_spec, now, cost
    )

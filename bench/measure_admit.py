"""Measure what one ``admit`` costs this Python process: pipelined client vs redis.asyncio.

Not a test (no timed tests in tests/): run it by hand, Redis on another core, e.g.::

    redis-server --port 6390 --save '' --appendonly no &
    taskset -c 1 .venv/bin/python bench/measure_admit.py --url redis://127.0.0.1:6390/0 \
        [--cluster-url redis+cluster://127.0.0.1:7000]

``CONCURRENCY`` tasks each loop over ``admit`` (three buckets + quota + usage, the shape of an
API-key request) for ``--seconds``. Reported per variant: calls/s, and the process CPU time per
call in µs (what the gateway's core pays; Redis's own CPU is not counted):

* ``floor``: await a future the next loop iteration resolves (what any round trip costs the
  harness and asyncio, before any Redis work);
* ``embedded``: :class:`MemoryStore.admit` (no I/O, never suspends);
* ``plain``: the same ADMIT_LUA with one redis.asyncio EVALSHA per call (pooled connections);
* ``pipelined``: :meth:`RedisStore.admit` (arguments, one pipelined EVALSHA, decoding);
* ``cluster`` (with ``--cluster-url``): :meth:`RedisClusterStore.admit`, EVALSHA through
  redis-py's cluster client (the pipelined client follows no MOVED/ASK).

Each variant runs ``--rounds`` times, alternating, and the median is reported. The keys are
flushed from the namespace ``measure:`` only (nothing else on that Redis is touched).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository's packages

from server.store.lua import ADMIT
from server.store.memory import MemoryStore
from server.store.redis import RedisStore
from server.store.redis_admit import AdmitCodec
from server.store.redis_cluster import RedisClusterStore
from server.throttle.admit import BucketSpec, QuotaSpec, UsageSpec, throttle_key

NS = "measure:"
BUCKETS = (
    BucketSpec(throttle_key("key", "k1"), 1e9, 10**12),
    BucketSpec(throttle_key("method", "api/prod/GET /pets"), 1e9, 10**12),
    BucketSpec(throttle_key("acct"), 1e9, 10**12),
)
QUOTA = QuotaSpec(throttle_key("q", "plan", "k1", "20260101"), 2**52, 90_000.0)
USAGE = UsageSpec(throttle_key("u", "plan", "k1", "20260101"), 90_000.0)


async def _run(call: Callable[[], Awaitable[object]], concurrency: int, seconds: float) -> tuple[float, ...]:
    stop = time.monotonic() + seconds
    counts = [0] * concurrency

    async def worker(slot: int) -> None:
        n = 0
        while time.monotonic() < stop:
            await call()
            n += 1
        counts[slot] = n

    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    total = sum(counts)
    return total / wall, cpu / total * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cluster-url", help="also measure RedisClusterStore (redis+cluster://...)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    memory = MemoryStore()
    store = RedisStore(options.url, namespace=NS)
    plain = aioredis.Redis.from_url(options.url, max_connections=options.concurrency, protocol=2)
    await store.start()
    keys = [NS + key for key in (*(b.key for b in BUCKETS), QUOTA.key, USAGE.key)]
    await plain.script_load(ADMIT.text)
    codec = AdmitCodec(NS)

    async def embedded() -> object:
        return await memory.admit(BUCKETS, QUOTA, now=time.time(), usage=USAGE)

    async def redis_py() -> object:
        argv = codec.argv(BUCKETS, QUOTA, USAGE, time.time(), 1)
        return await plain.evalsha(ADMIT.sha, len(keys), *keys, argv)

    async def pipelined() -> object:
        return await store.admit(BUCKETS, QUOTA, now=time.time(), usage=USAGE)

    loop = asyncio.get_running_loop()

    async def floor() -> object:
        future = loop.create_future()
        loop.call_soon(future.set_result, None)
        return await future

    variants: dict[str, Callable[[], Awaitable[object]]] = {
        "floor": floor,
        "embedded": embedded,
        "plain": redis_py,
        "pipelined": pipelined,
    }
    cluster: RedisClusterStore | None = None
    if options.cluster_url:
        cluster = RedisClusterStore(options.cluster_url, namespace=NS)
        await cluster.start()
        cluster_store = cluster

        async def on_cluster() -> object:
            return await cluster_store.admit(BUCKETS, QUOTA, now=time.time(), usage=USAGE)

        variants["cluster"] = on_cluster
    results: dict[str, list[tuple[float, ...]]] = {name: [] for name in variants}
    try:
        for _ in range(options.rounds):
            for name, call in variants.items():
                await plain.delete(*keys)
                results[name].append(await _run(call, options.concurrency, options.seconds))
    finally:
        await plain.delete(*keys)
        await plain.aclose()
        await store.close()
        if cluster is not None:
            await cluster.close()
    print(f"concurrency {options.concurrency}, {options.rounds} x {options.seconds} s, medians:")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"  {name:10} {rate:10,.0f} calls/s   {cpu:6.1f} µs CPU/call")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    asyncio.run(main())

"""The Redis store: N gateway nodes share one Redis (redis.asyncio with the hiredis parser).

Failure policy lives with the callers; this module guarantees three things:

* every Redis or socket failure reaches the caller as :class:`StoreUnavailable` (``from`` the
  original), and caller mistakes (wrong key type, non-integer counter) as :class:`StoreError`;
* nothing waits forever: connect and read timeouts bound every command;
* nothing needs restarting when Redis comes back: a pooled connection broken by a restart is
  retried once on a fresh connection, and subscriptions re-subscribe by themselves.

Every key and channel is prefixed with ``namespace`` so several gateways can share a Redis.
Every operation touches a single key, except :meth:`RedisStore.admit`, whose keys share one
hash tag (see :mod:`server.throttle.admit`), so the layout also works on Redis Cluster (the
namespace must then contain no braces).

:meth:`RedisStore.admit` is the request hot path: it goes through :class:`RedisPipe` (one
socket, concurrent calls pipelined), not redis.asyncio. To measure both on this machine:
``bench/measure_admit.py`` (see that script).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, NoScriptError

from server.store.base import (
    INT64_MAX,
    INT64_MIN,
    BucketDecision,
    FieldValue,
    StoreError,
    StoreUnavailable,
    check_ttl,
    encode_field,
)
from server.store.bucket import validate_bucket_args, validate_now_cost
from server.store.lua import ADMIT, BUCKET, BUCKET_LUA
from server.store.redis_admit import AdmitCodec, pack_now
from server.store.redis_errors import TRANSLATE as _TRANSLATE
from server.store.redis_pipe import RedisPipe, pack
from server.store.redis_pubsub import RedisSubscription
from server.store.spec_cache import SpecCache
from server.store.subscription import DEFAULT_BUFFER
from server.throttle.admit import AdmitDecision, BucketSpec, QuotaSpec, UsageSpec

__all__ = ["BUCKET_LUA", "DEFAULT_NAMESPACE", "RedisStore"]


DEFAULT_NAMESPACE = "portway:"


_CACHE = "cache:"


def _glob_escape(text: str) -> str:
    """``text`` matched literally by SCAN's glob pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _ms(ttl: float) -> int:
    check_ttl(ttl)
    # Round up (a key must not vanish early) but ignore float noise such as 0.29 * 1000.
    return max(1, math.ceil(ttl * 1000 - 1e-6))


class RedisStore:
    """:class:`~server.store.base.Store` on Redis.

    ``timeout`` bounds connecting, each reply, and the wait for one of the ``max_connections``
    pooled connections (seconds). A command that fails because its connection broke is retried
    once on a new connection (that is what makes a Redis restart invisible to callers);
    timeouts are not retried, so a stalled Redis costs at most ``timeout`` per attempt and a
    non-idempotent INCR is not doubled by a slow reply. ``ping_interval``: how long a
    subscription's connection may stay silent before it is probed.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        timeout: float = 1.0,
        connect_timeout: float | None = None,
        max_connections: int = 128,
        buffer: int = DEFAULT_BUFFER,
        ping_interval: float = 5.0,
    ) -> None:
        self._ns = namespace
        self._channel_ns = namespace  # prefix of pub/sub channels (RedisClusterStore adds a hash tag)
        self._timeout = timeout
        self._buffer = buffer
        self._ping_interval = ping_interval
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": connect_timeout if connect_timeout is not None else timeout,
            # Retry once, on a fresh connection, only when the connection broke (see class doc).
            "retry": Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
            "client_name": "portway",
            # RESP2, pinned: redis-py 8.2 made RESP3 (a HELLO handshake) its default. Every reply
            # shape, the Lua scripts' results and the pub/sub code here are RESP2's, and RESP2
            # works with every Redis/Valkey version and proxy, HELLO-less ones included.
            "protocol": 2,
        }
        self._client, self._pubsub_client = self._open_clients(url, max_connections, options)
        self._pipe: RedisPipe | None = self._open_pipe(url, timeout, connect_timeout)
        self._admit = AdmitCodec(namespace)
        self._prepared: SpecCache[tuple[bytes, bytes]] = SpecCache(self._admit.prepare)
        self._subs: set[RedisSubscription] = set()
        self._closed = False

    def _open_clients(self, url: str, max_connections: int, options: dict[str, Any]) -> tuple[Any, Any]:
        """The command client and the pub/sub client (overridden for Redis Cluster)."""
        # A bounded pool that *waits* (up to ``timeout``) for a free connection: the default pool
        # fails at once when full, which would turn a burst of requests into StoreUnavailable.
        client = aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=self._timeout, **options
            )
        )
        # Each subscription pins one connection for its lifetime; a separate, unbounded pool
        # keeps subscriptions from starving commands (and commands from blocking subscribers).
        pubsub = aioredis.Redis.from_pool(
            aioredis.ConnectionPool.from_url(url, max_connections=2**31, **options)
        )
        return client, pubsub

    def _open_pipe(self, url: str, timeout: float, connect_timeout: float | None) -> RedisPipe | None:
        """The pipelined client of :meth:`admit` (None: admit goes through the command client)."""
        return RedisPipe(url, timeout=timeout, connect_timeout=connect_timeout)

    @property
    def namespace(self) -> str:
        return self._ns

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("redis store is closed")

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        with _TRANSLATE:
            # Loading now saves a NOSCRIPT round trip on the first take().
            await self._client.script_load(BUCKET_LUA)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subs):
            await sub.close()
        if self._pipe is not None:
            await self._pipe.close()
        await self._client.aclose()
        await self._pubsub_client.aclose()

    async def ping(self) -> bool:
        if self._closed:
            return False
        try:
            with _TRANSLATE:
                return bool(await self._client.ping())
        except StoreError:
            return False

    # -- keys and strings --------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        # Through the pipelined connection (a few us of Python instead of redis.asyncio's ~30):
        # the Lambda authorizer's result cache reads one key per authorized request.
        self._check_open()
        if self._pipe is None:  # Redis Cluster: no single-socket pipe (keys live on every master)
            with _TRANSLATE:
                return cast("bytes | None", await self._client.get(self._ns + key))
        return cast("bytes | None", await self._pipe.submit(pack([b"GET", (self._ns + key).encode()])))

    async def set(
        self, key: str, value: bytes, *, ttl: float | None = None, only_if_absent: bool = False
    ) -> bool:
        px = None if ttl is None else _ms(ttl)
        self._check_open()
        with _TRANSLATE:
            return bool(await self._client.set(self._ns + key, value, px=px, nx=only_if_absent))

    async def delete(self, *keys: str) -> int:
        self._check_open()
        if not keys:
            return 0
        with _TRANSLATE:
            return int(await self._client.delete(*(self._ns + key for key in keys)))

    async def expire(self, key: str, ttl: float) -> bool:
        ms = _ms(ttl)
        self._check_open()
        with _TRANSLATE:
            return bool(await self._client.pexpire(self._ns + key, ms))

    async def ttl(self, key: str) -> float | None:
        self._check_open()
        with _TRANSLATE:
            ms = int(await self._client.pttl(self._ns + key))
        if ms == -2:
            return None
        return math.inf if ms == -1 else ms / 1000

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        if not INT64_MIN <= amount <= INT64_MAX:
            raise ValueError(f"amount must fit in a signed 64-bit integer, got {amount!r}")
        px = None if ttl is None else _ms(ttl)
        self._check_open()
        name = self._ns + key
        with _TRANSLATE:
            if px is None:
                return int(await self._client.incrby(name, amount))
            # SET NX creates the key with its TTL only if absent; MULTI makes the pair atomic.
            async with self._client.pipeline(transaction=True) as pipe:
                _ = pipe.set(name, b"0", px=px, nx=True)  # pipelined: returns the pipeline
                _ = pipe.incrby(name, amount)
                _, value = await pipe.execute()
            return int(value)

    # -- hashes and sets ---------------------------------------------------------------------

    async def _with_ttl(self, name: str, command: str, args: list[Any], ttl: float | None) -> Any:
        if ttl is None:
            return await self._client.execute_command(command, name, *args)
        async with self._client.pipeline(transaction=True) as pipe:
            _ = pipe.execute_command(command, name, *args)
            _ = pipe.pexpire(name, _ms(ttl))
            result, _ = await pipe.execute()
        return result

    async def hset(self, key: str, mapping: Mapping[str, FieldValue], *, ttl: float | None = None) -> None:
        if ttl is not None:
            check_ttl(ttl)
        flat: list[Any] = []
        for field, value in mapping.items():
            flat += (field, encode_field(value))
        self._check_open()
        if not flat:
            return
        with _TRANSLATE:
            await self._with_ttl(self._ns + key, "HSET", flat, ttl)

    async def hgetall(self, key: str) -> dict[str, bytes]:
        self._check_open()
        with _TRANSLATE:
            raw = cast("dict[bytes, bytes]", await self._client.hgetall(self._ns + key))
        return {field.decode(): value for field, value in raw.items()}

    async def hdel(self, key: str, *fields: str) -> int:
        self._check_open()
        if not fields:
            return 0
        with _TRANSLATE:
            return int(await self._client.hdel(self._ns + key, *fields))

    async def sadd(self, key: str, *members: str, ttl: float | None = None) -> int:
        if ttl is not None:
            check_ttl(ttl)
        self._check_open()
        if not members:
            return 0
        with _TRANSLATE:
            return int(await self._with_ttl(self._ns + key, "SADD", list(members), ttl))

    async def srem(self, key: str, *members: str) -> int:
        self._check_open()
        if not members:
            return 0
        with _TRANSLATE:
            return int(await self._client.srem(self._ns + key, *members))

    async def smembers(self, key: str) -> builtins.set[str]:
        self._check_open()
        with _TRANSLATE:
            raw = cast("builtins.set[bytes]", await self._client.smembers(self._ns + key))
        return {member.decode() for member in raw}

    async def scard(self, key: str) -> int:
        self._check_open()
        with _TRANSLATE:
            return int(await self._client.scard(self._ns + key))

    # -- token buckets -----------------------------------------------------------------------

    async def take(self, key: str, *, rate: float, burst: int, now: float, cost: int = 1) -> BucketDecision:
        validate_bucket_args(rate, burst, now, cost)
        self._check_open()
        # repr() of a float round-trips exactly through Lua's tonumber (strtod).
        args = (repr(float(rate)), str(burst), repr(float(now)), str(cost))
        name = self._ns + key
        with _TRANSLATE:
            try:
                reply = await self._client.evalsha(BUCKET.sha, 1, name, *args)
            except NoScriptError:
                # Redis restarted or flushed its script cache; EVAL runs and re-caches it.
                reply = await self._client.eval(BUCKET.text, 1, name, *args)
        allowed, remaining, retry_after, reset_after = reply
        return BucketDecision(allowed == 1, float(remaining), float(retry_after), float(reset_after))

    async def admit(
        self,
        buckets: Sequence[BucketSpec],
        quota: QuotaSpec | None = None,
        *,
        now: float,
        cost: int = 1,
        usage: UsageSpec | None = None,
    ) -> AdmitDecision:
        validate_now_cost(now, cost)
        self._check_open()
        assert self._pipe is not None  # RedisClusterStore overrides admit
        # The same (cached) spec tuples come back request after request: their checked keys and
        # packed command are kept (SpecCache), and only cost and now are formatted.
        prefix, suffix = self._prepared.get(buckets, quota, usage)
        command = prefix + pack_now(cost, now) + suffix
        return self._admit.decision(await self._pipe.submit(command, ADMIT), buckets, quota)

    # -- response cache ----------------------------------------------------------------------
    # Its own key space: ``<namespace>cache:<key>``. Reads and writes go through the pipelined
    # connection (a cache hit is the hot path); a flush scans, which only the admin API does.

    async def cache_get(self, key: str) -> bytes | None:
        self._check_open()
        if self._pipe is None:  # Redis Cluster: entries live on every master
            with _TRANSLATE:
                return cast("bytes | None", await self._client.get(self._ns + _CACHE + key))
        command = pack((b"GET", (self._ns + _CACHE + key).encode()))
        return cast("bytes | None", await self._pipe.submit(command))

    async def cache_put(self, key: str, value: bytes, *, ttl: float) -> None:
        px = _ms(ttl)
        self._check_open()
        if self._pipe is None:
            with _TRANSLATE:
                await self._client.set(self._ns + _CACHE + key, bytes(value), px=px)
            return
        name = (self._ns + _CACHE + key).encode()
        await self._pipe.submit(pack((b"SET", name, bytes(value), b"PX", b"%d" % px)))

    async def cache_flush(self, prefix: str) -> int:
        self._check_open()
        pattern = _glob_escape(self._ns + _CACHE + prefix) + "*"
        dropped = 0
        with _TRANSLATE:
            batch: list[bytes] = []
            async for name in self._client.scan_iter(match=pattern, count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    dropped += int(await self._client.unlink(*batch))
                    batch = []
            if batch:
                dropped += int(await self._client.unlink(*batch))
        return dropped

    # -- pub/sub -----------------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> int:
        self._check_open()
        with _TRANSLATE:
            return int(await self._client.publish(self._channel_ns + channel, message))

    def subscribe(self, *channels: str) -> RedisSubscription:
        self._check_open()
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        sub = RedisSubscription(
            self._pubsub_client,
            self._channel_ns,
            tuple(dict.fromkeys(channels)),
            maxsize=self._buffer,
            timeout=self._timeout,
            ping_interval=self._ping_interval,
            on_close=self._subs.discard,
        )
        self._subs.add(sub)
        return sub

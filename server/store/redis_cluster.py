"""The Redis store on Redis Cluster (or Valkey cluster): ``redis+cluster://`` / ``rediss+cluster://``.

    redis+cluster://[user:password@]host:port[,host:port...][/]

The hosts are startup nodes: any reachable one is enough, the client learns the slot map from
it (``CLUSTER SLOTS``) and follows ``MOVED``/``ASK`` redirections and failovers by itself
(redis-py's ``redis.asyncio.RedisCluster``). Everything else is :class:`RedisStore`'s: the same
keys, values, scripts, TTLs and failure policy.

Why this works on a cluster:

* every operation touches one key, except :meth:`admit` (its keys share the ``{tb}`` hash tag,
  so one slot and one node: checked by the contract suite against a real 3-master cluster) and
  ``DEL`` of several keys (redis-py splits it per slot);
* the MULTI pairs (``SET NX`` + ``INCRBY``, a write + ``PEXPIRE``) are on a single key;
* pub/sub is regular (not sharded) pub/sub, with every channel under one hash tag (``{ch}``):
  the subscription's connection and every ``PUBLISH`` go to the node owning that slot, so
  ``PUBLISH`` counts every subscriber (on a cluster it counts only the receiving node's, and the
  node bus uses that count to spot a dead node at once). The node bus carries little traffic;
  its one slot makes one master carry it all.

:meth:`admit` keeps the single-socket pipelined client (:mod:`server.store.redis_pipe`), which
follows no redirection, by pointing it at the master that owns the ``{tb}`` slot (every throttle
key's: one slot, so one node serves every decision). A ``MOVED``/``ASK`` reply or a failure of
that master drops the pipe; that call goes through the cluster client (slot map refresh,
redirections, retries) and the next one opens a pipe to the new owner. bench/RESULTS.md ("Redis
Cluster") has both paths' cost. A cluster spreads connection records, keys and pub/sub, not the
throttling load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import NoScriptError

from server.store.base import StoreError, StoreUnavailable
from server.store.bucket import validate_now_cost
from server.store.lua import ADMIT
from server.store.redis import RedisStore
from server.store.redis_admit import pack_now
from server.store.redis_errors import TRANSLATE as _TRANSLATE
from server.store.redis_pipe import RedisPipe
from server.store.spec_cache import SpecCache
from server.throttle.admit import AdmitDecision, BucketSpec, QuotaSpec, UsageSpec

__all__ = ["CLUSTER_SCHEMES", "ClusterUrl", "RedisClusterStore", "parse_cluster_url"]

CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})


class ClusterUrl:
    """The parts of a ``redis+cluster://`` URL."""

    __slots__ = ("nodes", "username", "password", "tls")

    def __init__(self, nodes: list[tuple[str, int]], username: str | None, password: str | None, tls: bool):
        self.nodes = nodes
        self.username = username
        self.password = password
        self.tls = tls


def parse_cluster_url(url: str) -> ClusterUrl:
    """``redis+cluster://[user:password@]host:port[,host:port...]`` -> startup nodes and
    credentials (ValueError for anything else; a database number is refused: a cluster has db 0
    only)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL: {url!r} (redis+cluster://host:port[,host:port...])")
    netloc, _, path = rest.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has database 0 only: remove the /N from the URL")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = []
    for part in hosts.split(","):
        host, colon, port = part.strip().rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ValueError(f"Redis Cluster node {part!r}: expected host:port")
        nodes.append((host.strip("[]"), int(port)))
    return ClusterUrl(nodes, username, password, scheme.lower() == "rediss+cluster")


class _WaitingCluster(aioredis.RedisCluster):
    """``RedisCluster`` whose commands wait (up to ``wait_s``) for one of ``limit`` slots.

    redis-py's cluster client has no blocking pool: past ``max_connections`` to a node a command
    fails at once (``MaxConnectionsError``), so a burst of 200 concurrent calls failed where the
    single-node store (``BlockingConnectionPool``) waits. Every single command goes through
    ``execute_command``; MULTI pipelines (two per ``incr``/``hset`` with a TTL) do not, so the
    per-node cap is set above ``limit`` to leave them room.
    """

    def __init__(self, *args: Any, limit: int, wait_s: float, **kwargs: Any) -> None:
        kwargs["max_connections"] = 2 * limit
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(limit)
        self._wait_s = wait_s

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with asyncio.timeout(self._wait_s):
            await self._slots.acquire()
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._slots.release()


class RedisClusterStore(RedisStore):
    """:class:`RedisStore` on a Redis Cluster (see the module docstring)."""

    name = "redis-cluster"

    def __init__(self, url: str, **options: Any) -> None:
        self._parsed = parse_cluster_url(url)
        self._tb_pipe: RedisPipe | None = None
        super().__init__(url, **options)
        # One slot for every channel: a subscription's connection goes to the node owning the
        # channel's slot, and so does a PUBLISH, so PUBLISH's count (local to the node that
        # takes it, on a cluster) is every subscriber's, as on one Redis.
        self._channel_ns = self._ns + "{ch}:"
        # Per spec tuple: the namespaced keys of ADMIT_LUA (derived once, as the pipe's command is).
        self._keys: SpecCache[tuple[str, ...]] = SpecCache(lambda keys, *_: tuple(self._ns + k for k in keys))

    def _open_clients(self, url: str, max_connections: int, options: dict[str, Any]) -> tuple[Any, Any]:
        parsed = self._parsed
        settings = {key: value for key, value in options.items() if key != "retry"}
        # A command that meets a broken connection or a failover is retried by the cluster
        # client after refreshing its slot map (its own retry policy, bounded by the timeouts).
        client = _WaitingCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
            username=parsed.username,
            password=parsed.password,
            ssl=parsed.tls,
            limit=max_connections,
            wait_s=self._timeout,
            **settings,
        )
        return client, client  # ClusterPubSub connections are its own, not the command pool's

    def _open_pipe(self, url: str, timeout: float, connect_timeout: float | None) -> RedisPipe | None:
        return None  # admit goes through the cluster client (see the module docstring)

    def _admit_pipe(self) -> RedisPipe | None:
        """The pipelined client to the master owning the ``{tb}`` slot (every ADMIT_LUA key's),
        opened on first use and again after a redirection or failure; None until the slot map
        is known (the cluster client learns it on its first command, in :meth:`start`)."""
        if self._tb_pipe is not None:
            return self._tb_pipe
        try:
            node = self._client.get_node_from_key(self._ns + "{tb}")
        except Exception:  # no slot map yet, or no owner: the cluster client's path copes
            return None
        if node is None:
            return None
        auth = ""
        if self._parsed.password is not None:
            auth = f"{quote(self._parsed.username or '', safe='')}:{quote(self._parsed.password, safe='')}@"
        scheme = "rediss" if self._parsed.tls else "redis"
        self._tb_pipe = RedisPipe(f"{scheme}://{auth}{node.host}:{node.port}/0", timeout=self._timeout)
        return self._tb_pipe

    async def _drop_pipe(self) -> None:
        pipe, self._tb_pipe = self._tb_pipe, None
        if pipe is not None:
            await pipe.close()

    async def close(self) -> None:
        await self._drop_pipe()
        await super().close()

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
        pipe = self._admit_pipe()
        if pipe is not None:
            # Fast path: one pipelined EVALSHA to the slot's master, as with one Redis.
            prefix, suffix = self._prepared.get(buckets, quota, usage)
            try:
                reply = await pipe.submit(prefix + pack_now(cost, now) + suffix, ADMIT)
            except StoreError as exc:
                # MOVED/ASK (resharding, failover) or that master unreachable: forget the pipe,
                # and let the cluster client (slot map refresh, redirections, retries) answer.
                if not isinstance(exc, StoreUnavailable) and not str(exc).startswith(("MOVED", "ASK")):
                    raise
                await self._drop_pipe()
            else:
                return self._admit.decision(reply, buckets, quota)
        keys = self._keys.get(buckets, quota, usage)
        argv = self._admit.argv(buckets, quota, usage, now, cost)
        with _TRANSLATE:
            try:
                reply = await self._client.evalsha(ADMIT.sha, len(keys), *keys, argv)
            except NoScriptError:
                # A new or failed-over master without the script: EVAL runs and caches it.
                reply = await self._client.eval(ADMIT.text, len(keys), *keys, argv)
        try:
            return self._admit.decision(reply, buckets, quota)
        except (TypeError, ValueError) as exc:  # not ADMIT_LUA's reply shape
            raise StoreError(f"unexpected admit reply: {reply!r}") from exc

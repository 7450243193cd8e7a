"""Choose the store from configuration: no URL means one embedded node, a Redis URL means N."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from server.store.base import Store
from server.store.memory import MemoryStore
from server.store.redis import DEFAULT_NAMESPACE, RedisStore
from server.store.redis_cluster import CLUSTER_SCHEMES, RedisClusterStore

__all__ = ["open_store"]

_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def open_store(
    url: str | None,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    timeout: float = 1.0,
    state_path: str | os.PathLike[str] | None = None,
) -> Store:
    """A new, not yet started store (``await store.start()`` next, ``await store.close()`` last).

    ``None`` (or ``""`` / ``memory://``) gives the embedded store; ``redis://``, ``rediss://``
    (TLS) and ``unix://`` URLs give the Redis store, ``redis+cluster://host:port[,host:port]``
    (``rediss+cluster://``) the same store on Redis Cluster, with ``namespace`` prefixed to every key
    and ``timeout`` seconds bounding each connect and reply. Anything else is a configuration
    error (ValueError), never a silent fallback to the embedded store: N nodes each believing
    they are alone would each admit the full rate limit.

    ``state_path`` makes the embedded store keep its durable keys (quota and usage counters,
    the API-key registry) in that file across restarts (see :mod:`server.store.memory_persist`);
    the Redis store ignores it (Redis persists by itself).
    """
    if not url or url == "memory://":
        return MemoryStore(state_path=state_path)
    scheme = urlsplit(url).scheme.lower()
    if scheme in CLUSTER_SCHEMES:
        return RedisClusterStore(url, namespace=namespace, timeout=timeout)
    if scheme in _REDIS_SCHEMES:
        return RedisStore(url, namespace=namespace, timeout=timeout)
    raise ValueError(
        f"unsupported store URL scheme {scheme!r}: use redis://, rediss://, unix://, redis+cluster:// or none"
    )

"""The store contract: the one interface both the embedded store and the Redis store implement.

The gateway keeps every piece of shared state (connection records, channel membership, quota
counters, throttling buckets, caches) behind :class:`Store`, so one node (embedded) and N nodes
sharing Redis behave the same. ``tests/store/test_contract.py`` runs one suite against both.

Data model (Redis's, so the embedded store cannot drift from it): one key space of str keys; a
key holds a string (bytes), a hash (str -> bytes) or a set (str). Using a key as the wrong kind
raises :class:`StoreError`. Emptying a hash or set deletes its key. TTLs are float seconds and
must be > 0. Writing a string with :meth:`Store.set` drops its TTL; changing a hash or set keeps
it (unless ``ttl`` is passed).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from server.store.bucket import BucketDecision

if TYPE_CHECKING:
    from server.throttle.admit import AdmitDecision, BucketSpec, QuotaSpec, UsageSpec

__all__ = [
    "BucketDecision",
    "FieldValue",
    "INT64_MAX",
    "INT64_MIN",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Subscription",
    "check_ttl",
    "encode_field",
]

FieldValue = bytes | str | int
"""What :meth:`Store.hset` accepts; str is stored UTF-8 encoded, int as its decimal digits."""


# Signed 64-bit range of Redis counters, enforced by the embedded store too.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_ttl(ttl: float) -> None:
    """TTLs are finite and > 0 (Redis rejects 0 and negatives; no store silently ignores them)."""
    if isinstance(ttl, bool) or not (math.isfinite(ttl) and ttl > 0):
        raise ValueError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")


def encode_field(value: FieldValue) -> bytes:
    """The bytes both stores keep for a hash field value (see :data:`FieldValue`)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if type(value) is int:  # not bool: True would silently become b"True"
        return str(value).encode()
    raise TypeError(f"hash field values are bytes, str or int, not {type(value).__name__}")


class StoreError(Exception):
    """A store operation failed for a reason the caller caused (wrong key type, non-integer
    counter, counter overflow). Retrying will not help."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached right now (down, restarting, loading, timed out, closed).

    Raised ``from`` the backend's own exception. Callers decide the policy: fail open (e.g. let
    the request through unthrottled) or fail closed (e.g. 503). Stores recover by themselves
    when the backend returns; no reconnect call is needed.
    """


@runtime_checkable
class Subscription(Protocol):
    """Messages published on some channels, as an async iterator of ``(channel, payload)``.

    Delivery is at most once: messages published while the backend is unreachable, or before
    :meth:`ready` returns, may be lost. Each subscription buffers a bounded number of messages;
    when its consumer falls behind, the oldest are dropped and counted in :attr:`dropped`.
    Iteration ends after :meth:`close` (or the store's ``close``).
    """

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels this subscription listens to, as given to :meth:`Store.subscribe`."""
        ...

    @property
    def dropped(self) -> int:
        """How many messages were discarded because the buffer was full."""
        ...

    async def ready(self) -> None:
        """Return once the subscription is active (messages published from now on arrive).

        After the backend reconnects this waits again until re-subscribed. It does not time out
        by itself: wrap it in ``asyncio.timeout`` when the backend may be down.
        """
        ...

    async def close(self) -> None:
        """Stop listening and end iteration. Idempotent."""
        ...

    def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]: ...

    async def __aenter__(self) -> Self:
        """``async with store.subscribe(...) as sub``: waits for :meth:`ready`."""
        ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Closes the subscription."""
        ...


@runtime_checkable
class Store(Protocol):
    """Shared state of the gateway. Every method except :meth:`subscribe` is a coroutine.

    Every async operation may raise :class:`StoreUnavailable`; none waits forever (the Redis
    store bounds connect and read times). Keys and channel names are str, values are bytes.
    """

    @property
    def name(self) -> str:
        """``"embedded"`` or ``"redis"``."""
        ...

    async def start(self) -> None:
        """Connect and prepare. Raises :class:`StoreUnavailable` if the backend is unreachable;
        the store then still works once the backend comes up."""
        ...

    async def close(self) -> None:
        """Release connections and end all subscriptions. Idempotent; later calls raise
        :class:`StoreUnavailable`."""
        ...

    async def ping(self) -> bool:
        """True if the backend answers now. Never raises :class:`StoreUnavailable`."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The string at ``key``, or None if absent or expired."""
        ...

    async def set(
        self, key: str, value: bytes, *, ttl: float | None = None, only_if_absent: bool = False
    ) -> bool:
        """Store ``value`` (replacing any value or TTL). With ``only_if_absent`` nothing is
        written if the key exists. Returns whether it was written."""
        ...

    async def delete(self, *keys: str) -> int:
        """Delete keys of any kind; returns how many existed."""
        ...

    async def expire(self, key: str, ttl: float) -> bool:
        """Set ``key`` to expire ``ttl`` seconds from now. False if the key does not exist."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires; ``math.inf`` if it never does; None if absent."""
        ...

    async def hset(self, key: str, mapping: Mapping[str, FieldValue], *, ttl: float | None = None) -> None:
        """Set hash fields. With ``ttl`` the key's expiry is (re)set in the same atomic step,
        so a record and its lifetime are never seen apart. An empty mapping writes nothing."""
        ...

    async def hgetall(self, key: str) -> dict[str, bytes]:
        """All fields of the hash (empty dict if absent)."""
        ...

    async def hdel(self, key: str, *fields: str) -> int:
        """Remove fields; returns how many existed. Removing the last field deletes the key."""
        ...

    async def sadd(self, key: str, *members: str, ttl: float | None = None) -> int:
        """Add members; returns how many were new. ``ttl`` as for :meth:`hset`."""
        ...

    async def srem(self, key: str, *members: str) -> int:
        """Remove members; returns how many were present. Removing the last deletes the key."""
        ...

    async def smembers(self, key: str) -> builtins.set[str]:
        """All members (empty set if absent)."""
        ...

    async def scard(self, key: str) -> int:
        """Number of members (0 if absent)."""
        ...

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Atomically add ``amount`` to the signed 64-bit counter at ``key`` (absent = 0) and
        return the new value. ``ttl`` applies only when this call creates the key, so a
        fixed window (quota per day) keeps its original end. Raises :class:`StoreError` if
        the value is not an integer or the result would overflow."""
        ...

    async def take(self, key: str, *, rate: float, burst: int, now: float, cost: int = 1) -> BucketDecision:
        """Atomically take ``cost`` tokens from the token bucket at ``key``.

        The bucket starts full (``burst`` tokens) and refills ``rate`` tokens per second up to
        ``burst`` (see :func:`server.store.bucket.take_tokens`, which every store runs). ``now``
        is the caller's clock in seconds; nodes sharing a store must use the same clock (wall
        time). The key is a single key (Redis Cluster safe), opaque to the other methods, and
        expires when the bucket would be full again.
        """
        ...

    async def admit(
        self,
        buckets: Sequence[BucketSpec],
        quota: QuotaSpec | None = None,
        *,
        now: float,
        cost: int = 1,
        usage: UsageSpec | None = None,
    ) -> AdmitDecision:
        """Atomically decide a whole request: every bucket, then the quota, in one step.

        :func:`server.throttle.admit.admit_state` is the decision, which every store applies:
        all pass, then ``cost`` is taken from every bucket and added to the quota counter and
        the usage counter; any fails, then nothing is taken or counted anywhere and
        ``failed`` names the first failure in the order given (most specific level first).
        A refusal writes nothing at all. Bucket keys are admission's own (opaque, not
        interchangeable with :meth:`take`'s) and expire when the bucket would be full again.
        The quota and usage counters are integer strings (readable with :meth:`get`) created
        with their spec's ``ttl``, which later increments keep. A key of another kind found
        where admission expects its own counts as absent and is replaced. Every key must be
        distinct and carry the same hash tag (ValueError otherwise): see
        :mod:`server.throttle.admit`.

        Concurrent calls on the Redis store are pipelined (one write per event-loop
        iteration, one Lua script per call). Raises :class:`StoreError`, writing nothing, if
        a counter holds anything but an integer within +-2**53.
        """
        ...

    async def cache_get(self, key: str) -> bytes | None:
        """The response-cache entry at ``key``, or None if absent, expired or evicted.

        Cache entries live in their own key space (the stage cache's, :mod:`server.cache`):
        :meth:`get`, :meth:`delete` and the rest never see them, and they never see other keys.
        Best effort by design (AWS's cache is too): the embedded store keeps at most
        ``cache_max_bytes`` of them and evicts the least recently used first.
        """
        ...

    async def cache_put(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store a response-cache entry for ``ttl`` seconds (> 0), replacing any entry at ``key``."""
        ...

    async def cache_flush(self, prefix: str) -> int:
        """Drop every response-cache entry whose key starts with ``prefix`` (one stage's
        entries; see :func:`server.cache.keys.stage_prefix`); returns how many were dropped."""
        ...

    async def publish(self, channel: str, message: bytes) -> int:
        """Send ``message`` to the channel's current subscribers (on this node for the
        embedded store, on every node for Redis); returns how many received it."""
        ...

    def subscribe(self, *channels: str) -> Subscription:
        """Listen to channels (not a coroutine: the subscription connects lazily; await
        :meth:`Subscription.ready` or use ``async with``)."""
        ...

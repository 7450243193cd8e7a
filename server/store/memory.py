"""The embedded store: one process, no Redis. Same contract as the Redis store.

Single-threaded by construction: every method runs to completion without awaiting, so each
one is atomic on the event loop, like a Redis command. Expiry is lazy (a key is checked when
touched) plus a bounded sweep of a deadline heap on writes, so keys nobody touches again do
not accumulate; no background task exists.

With ``state_path`` the *durable* keys (quota and usage counters, the ``pw:`` registry; see
:mod:`server.store.memory_persist`) survive restarts and crashes: every mutation of one is
appended to a journal before the call returns, and :meth:`MemoryStore.start` loads them back.
"""

from __future__ import annotations

import asyncio
import builtins
import heapq
import itertools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

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
from server.store.bucket import BucketState, take_tokens
from server.store.memory_admit import INT_RE, NOT_INT, admit_in
from server.store.memory_cache import DEFAULT_CACHE_MAX_BYTES, LruCache
from server.store.memory_persist import DURABLE_PREFIXES, StateFile
from server.store.spec_cache import SpecCache
from server.store.subscription import DEFAULT_BUFFER, QueueSubscription
from server.throttle.admit import AdmitDecision, BucketSpec, QuotaSpec, UsageSpec

__all__ = ["DURABLE_PREFIXES", "MemoryStore", "MemorySubscription"]

_Value = bytes | dict[str, bytes] | set[str] | BucketState
_V = TypeVar("_V", bytes, dict[str, bytes], set[str], BucketState)

# Redis's own messages, so logs and tests read the same for both stores.
_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
_OVERFLOW = "ERR increment or decrement would overflow"
_SWEEP_PER_WRITE = 32


@dataclass(slots=True)
class Entry:
    value: _Value
    expires_at: float | None = None


class MemorySubscription(QueueSubscription):
    """A subscription delivered in process; active as soon as it is created."""

    def __init__(self, store: MemoryStore, channels: tuple[str, ...], maxsize: int) -> None:
        super().__init__(channels, maxsize)
        self._store = store

    async def ready(self) -> None:
        return None

    async def _on_close(self) -> None:
        self._store._unsubscribe(self)


class MemoryStore:
    """In-process :class:`~server.store.base.Store`.

    ``clock`` (seconds, default ``time.monotonic``) drives TTLs only; tests inject a fake one.
    Token buckets use the caller's ``now`` like every store.

    ``cache_max_bytes``: the response cache's memory bound (least recently used evicted).

    ``state_path``: keep keys starting with one of ``durable_prefixes`` in that file (and
    ``state_path + ".journal"``), loaded by :meth:`start` (StoreError if unreadable or corrupt)
    and saved by :meth:`close`; see :mod:`server.store.memory_persist`. Without it there is no
    file I/O at all.
    """

    name = "embedded"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        buffer: int = DEFAULT_BUFFER,
        state_path: str | os.PathLike[str] | None = None,
        durable_prefixes: tuple[str, ...] = DURABLE_PREFIXES,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
    ) -> None:
        self._clock = clock
        self._cache = LruCache(clock, cache_max_bytes)
        self._buffer = buffer
        self._checked: SpecCache[None] = SpecCache(lambda *_: None)
        self._data: dict[str, Entry] = {}
        # (deadline, tiebreak, key); entries may be stale (TTL changed or key deleted), which
        # the sweep tolerates; the heap is rebuilt when stale entries dominate.
        self._deadlines: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._subs: dict[str, set[MemorySubscription]] = {}
        self._closed = False
        self._state: StateFile | None = None
        if state_path is not None:
            self._state = StateFile(self, state_path, durable_prefixes, clock=clock)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        if self._state is not None:
            self._state.load()  # synchronous: nothing else runs before it is done

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        subs = {sub for group in self._subs.values() for sub in group}
        for sub in subs:
            await sub.close()
        if self._state is not None:
            self._state.close()
        self._data.clear()
        self._deadlines.clear()
        self._cache.clear()

    async def ping(self) -> bool:
        return not self._closed

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("embedded store is closed")

    def _live(self, key: str) -> Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= self._clock():
            del self._data[key]
            return None
        return entry

    def _typed(self, key: str, kind: type[_V]) -> _V | None:
        entry = self._live(key)
        if entry is None:
            return None
        if not isinstance(entry.value, kind):
            raise StoreError(_WRONGTYPE)
        return entry.value

    def _set_deadline(self, key: str, entry: Entry, ttl: float | None) -> None:
        if ttl is None or math.isinf(ttl):
            entry.expires_at = None
            return
        previous = entry.expires_at
        entry.expires_at = deadline = self._clock() + ttl
        if previous is not None and previous <= deadline:
            # Invariant: an entry with a deadline has a heap record at or before it. This one
            # still does; the sweep re-queues it when it pops it early. (Token buckets and
            # idle timeouts move their deadline later on every request: no push each time.)
            return
        heapq.heappush(self._deadlines, (deadline, next(self._seq), key))
        if len(self._deadlines) > 2 * len(self._data) + 1024:
            self._deadlines = [
                (e.expires_at, next(self._seq), k) for k, e in self._data.items() if e.expires_at is not None
            ]
            heapq.heapify(self._deadlines)

    def _sweep(self) -> None:
        """Drop a bounded number of expired keys (amortised O(log n) per write)."""
        now = self._clock()
        heap = self._deadlines
        for _ in range(_SWEEP_PER_WRITE):
            if not heap or heap[0][0] > now:
                return
            _, _, key = heapq.heappop(heap)
            entry = self._data.get(key)
            if entry is None or entry.expires_at is None:
                continue
            if entry.expires_at <= now:
                del self._data[key]
            else:  # the deadline moved later since this record was queued
                heapq.heappush(heap, (entry.expires_at, next(self._seq), key))

    def _write(self, key: str, kind: type[_V], empty: Callable[[], _V]) -> tuple[Entry, _V]:
        """The entry at ``key`` holding a ``kind``, created empty (without TTL) if absent."""
        self._check_open()
        self._sweep()
        entry = self._live(key)
        if entry is None:
            entry = self._data[key] = Entry(empty())
        if not isinstance(entry.value, kind):
            raise StoreError(_WRONGTYPE)
        return entry, entry.value

    def _put(self, key: str, value: _Value, ttl: float | None) -> None:
        """Replace whatever ``key`` holds with ``value``, expiring in ``ttl`` s (None: never)."""
        entry = self._data.get(key)
        if entry is None:
            entry = self._data[key] = Entry(value)
        else:  # reused (even if expired, not yet swept): its heap record is still queued
            entry.value = value
        self._set_deadline(key, entry, ttl)

    def _drop_if_empty(self, key: str, container: dict[str, bytes] | set[str]) -> None:
        if not container:
            self._data.pop(key, None)

    # -- keys and strings --------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        self._check_open()
        return self._typed(key, bytes)

    async def set(
        self, key: str, value: bytes, *, ttl: float | None = None, only_if_absent: bool = False
    ) -> bool:
        self._check_open()
        if ttl is not None:
            check_ttl(ttl)
        self._sweep()
        if only_if_absent and self._live(key) is not None:
            return False
        entry = self._data[key] = Entry(bytes(value))
        self._set_deadline(key, entry, ttl)
        if self._state is not None:
            self._state.changed(key)
        return True

    async def delete(self, *keys: str) -> int:
        self._check_open()
        removed = []
        for key in dict.fromkeys(keys):  # Redis counts a repeated key once
            if self._live(key) is not None:
                del self._data[key]
                removed.append(key)
        if self._state is not None:
            self._state.changed_many(removed)
        return len(removed)

    async def expire(self, key: str, ttl: float) -> bool:
        self._check_open()
        check_ttl(ttl)
        entry = self._live(key)
        if entry is None:
            return False
        self._set_deadline(key, entry, ttl)
        if self._state is not None:
            self._state.changed(key)
        return True

    async def ttl(self, key: str) -> float | None:
        self._check_open()
        entry = self._live(key)
        if entry is None:
            return None
        if entry.expires_at is None:
            return math.inf
        return max(0.0, entry.expires_at - self._clock())

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        if not INT64_MIN <= amount <= INT64_MAX:
            raise ValueError(f"amount must fit in a signed 64-bit integer, got {amount!r}")
        if ttl is not None:
            check_ttl(ttl)
        self._check_open()
        self._sweep()
        value = self._counter(key)
        entry = self._live(key)
        if entry is None:
            entry = self._data[key] = Entry(b"0")
            self._set_deadline(key, entry, ttl)
        result = value + amount
        if not INT64_MIN <= result <= INT64_MAX:
            raise StoreError(_OVERFLOW)
        entry.value = str(result).encode()
        if self._state is not None:
            self._state.changed(key)
        return result

    def _counter(self, key: str) -> int:
        """The integer at ``key`` (0 if absent); StoreError as Redis's INCRBY would raise."""
        value = self._typed(key, bytes)
        if value is None:
            return 0
        if INT_RE.fullmatch(value) is None or not INT64_MIN <= int(value) <= INT64_MAX:
            raise StoreError(NOT_INT)
        return int(value)

    # -- hashes and sets ---------------------------------------------------------------------

    async def hset(self, key: str, mapping: Mapping[str, FieldValue], *, ttl: float | None = None) -> None:
        if ttl is not None:
            check_ttl(ttl)
        encoded = {field: encode_field(value) for field, value in mapping.items()}
        if not encoded:
            self._check_open()
            return
        entry, fields = self._write(key, dict, dict)
        fields.update(encoded)
        if ttl is not None:
            self._set_deadline(key, entry, ttl)
        if self._state is not None:
            self._state.changed(key)

    async def hgetall(self, key: str) -> dict[str, bytes]:
        self._check_open()
        return dict(self._typed(key, dict) or {})

    async def hdel(self, key: str, *fields: str) -> int:
        self._check_open()
        current = self._typed(key, dict)
        if current is None:
            return 0
        removed = sum(current.pop(field, None) is not None for field in set(fields))
        self._drop_if_empty(key, current)
        if removed and self._state is not None:
            self._state.changed(key)
        return removed

    async def sadd(self, key: str, *members: str, ttl: float | None = None) -> int:
        if ttl is not None:
            check_ttl(ttl)
        if not members:
            self._check_open()
            return 0
        entry, current = self._write(key, set, set)
        before = len(current)
        current.update(members)
        if ttl is not None:
            self._set_deadline(key, entry, ttl)
        if self._state is not None:
            self._state.changed(key)
        return len(current) - before

    async def srem(self, key: str, *members: str) -> int:
        self._check_open()
        current = self._typed(key, set)
        if current is None:
            return 0
        before = len(current)
        current.difference_update(members)
        self._drop_if_empty(key, current)
        if len(current) != before and self._state is not None:
            self._state.changed(key)
        return before - len(current)

    async def smembers(self, key: str) -> builtins.set[str]:
        self._check_open()
        return set(self._typed(key, set) or ())

    async def scard(self, key: str) -> int:
        self._check_open()
        return len(self._typed(key, set) or ())

    # -- token buckets -----------------------------------------------------------------------

    async def take(self, key: str, *, rate: float, burst: int, now: float, cost: int = 1) -> BucketDecision:
        self._check_open()
        self._sweep()
        state = self._typed(key, BucketState)
        new_state, decision = take_tokens(state, rate=rate, burst=burst, now=now, cost=cost)
        if new_state is None:
            self._data.pop(key, None)
        else:
            self._put(key, new_state, decision.reset_after)
        if self._state is not None:
            self._state.changed(key)  # durable only if misused: then recorded as deleted
        return decision

    async def admit(
        self,
        buckets: Sequence[BucketSpec],
        quota: QuotaSpec | None = None,
        *,
        now: float,
        cost: int = 1,
        usage: UsageSpec | None = None,
    ) -> AdmitDecision:
        self._checked.get(buckets, quota, usage)  # keys checked once per spec tuple
        self._check_open()
        self._sweep()
        decision = admit_in(self, buckets, quota, usage, now, cost)  # no await: atomic
        if self._state is not None and decision.allowed:
            self._state.admitted(buckets, quota, usage, cost)  # one write for quota + usage
        return decision

    # -- pub/sub -----------------------------------------------------------------------------

    # -- response cache ----------------------------------------------------------------------

    async def cache_get(self, key: str) -> bytes | None:
        # One pass through the event loop first, as a Redis round trip makes: measured under load
        # (bench/bench_cache.py), a cache hit answered without ever suspending cost ~12 us more
        # gateway CPU per request than one that yields once (aiohttp/uvloop scheduling; the
        # mechanism is not pinned down). The read itself stays one atomic step.
        await asyncio.sleep(0)
        self._check_open()
        return self._cache.get(key)

    async def cache_put(self, key: str, value: bytes, *, ttl: float) -> None:
        self._check_open()
        check_ttl(ttl)
        self._cache.put(key, bytes(value), ttl)

    async def cache_flush(self, prefix: str) -> int:
        self._check_open()
        return self._cache.flush(prefix)

    async def publish(self, channel: str, message: bytes) -> int:
        self._check_open()
        payload = bytes(message)
        return sum(sub._push(channel, payload) for sub in list(self._subs.get(channel, ())))

    def subscribe(self, *channels: str) -> MemorySubscription:
        self._check_open()
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        sub = MemorySubscription(self, tuple(dict.fromkeys(channels)), self._buffer)
        for channel in sub.channels:
            self._subs.setdefault(channel, set()).add(sub)
        return sub

    def _unsubscribe(self, sub: MemorySubscription) -> None:
        for channel in sub.channels:
            group = self._subs.get(channel)
            if group is not None:
                group.discard(sub)
                if not group:
                    del self._subs[channel]

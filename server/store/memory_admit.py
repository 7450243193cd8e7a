"""The embedded store's :meth:`~server.store.memory.MemoryStore.admit` (kept apart from memory.py
to keep that module small): :func:`server.throttle.admit.admit_state` applied in one step.

Like ``ADMIT_LUA``, it reads everything before writing anything, sees keys of another kind as
absent (and replaces them), and refuses counters a double cannot hold exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from server.store.base import StoreError
from server.store.bucket import MAX_TOKENS, BucketState, reset_after
from server.throttle.admit import AdmitDecision, BucketSpec, QuotaSpec, UsageSpec, admit_state

if TYPE_CHECKING:
    from server.store.memory import MemoryStore

__all__ = ["admit_in"]

_NOT_INT = "ERR value is not an integer or out of range"


def admit_in(
    store: MemoryStore,
    buckets: Sequence[BucketSpec],
    quota: QuotaSpec | None,
    usage: UsageSpec | None,
    now: float,
    cost: int,
) -> AdmitDecision:
    """Decide and write (no await: atomic on the event loop). Keys are already checked."""
    states = [_bucket(store, spec.key) for spec in buckets]
    count = 0 if quota is None else _counter(store, quota.key)
    used = 0 if usage is None else _counter(store, usage.key)
    new_states, new_count, decision = admit_state(states, count, buckets, quota, now=now, cost=cost)
    if not decision.allowed:
        return decision
    if cost:
        if quota is not None:
            _bump(store, quota.key, new_count, quota.ttl)
        if usage is not None:
            _bump(store, usage.key, used + cost, usage.ttl)
    for spec, state in zip(buckets, new_states, strict=True):
        if state is None:
            store._data.pop(spec.key, None)
        else:
            store._put(spec.key, state, reset_after(state.tokens, spec.rate, spec.burst))
    return decision


def _bucket(store: MemoryStore, key: str) -> BucketState | None:
    entry = store._live(key)
    return entry.value if entry is not None and isinstance(entry.value, BucketState) else None


def _counter(store: MemoryStore, key: str) -> int:
    entry = store._live(key)
    if entry is None or not isinstance(entry.value, bytes):
        return 0
    value = store._counter(key)
    if abs(value) > MAX_TOKENS:  # ADMIT_LUA counts in doubles: exact up to 2**53
        raise StoreError(_NOT_INT)
    return value


def _bump(store: MemoryStore, key: str, value: int, ttl: float) -> None:
    """Store counter ``value``; the TTL only when this creates it (like ``Store.incr``)."""
    entry = store._live(key)
    if entry is None or not isinstance(entry.value, bytes):
        store._put(key, str(value).encode(), ttl)
    else:
        entry.value = str(value).encode()

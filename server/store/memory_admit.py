"""The embedded store's :meth:`~server.store.memory.MemoryStore.admit` (kept apart from memory.py
to keep that module small): :func:`server.throttle.admit.admit_state` applied in one step.

Like ``ADMIT_LUA``, it reads everything before writing anything, sees keys of another kind as
absent (and replaces them), and refuses counters a double cannot hold exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from server.store.base import StoreError
from server.store.bucket import MAX_TOKENS, BucketState, reset_after
from server.throttle.admit import AdmitDecision, BucketSpec, QuotaSpec, UsageSpec, admit_state

if TYPE_CHECKING:
    from server.store.memory import Entry, MemoryStore

__all__ = ["INT_RE", "NOT_INT", "admit_in"]

# Redis's rules for an integer string (string2ll): no '+', no spaces, no leading zeros, no "-0".
INT_RE = re.compile(rb"-?[1-9][0-9]{0,18}|0")
NOT_INT = "ERR value is not an integer or out of range"


def admit_in(
    store: MemoryStore,
    buckets: Sequence[BucketSpec],
    quota: QuotaSpec | None,
    usage: UsageSpec | None,
    now: float,
    cost: int,
) -> AdmitDecision:
    """Decide and write (no await: atomic on the event loop). Keys are already checked."""
    live = store._live
    entries = [live(spec.key) for spec in buckets]
    states = [e.value if e is not None and type(e.value) is BucketState else None for e in entries]
    quota_entry = None if quota is None else live(quota.key)
    usage_entry = None if usage is None else live(usage.key)
    count, used = _counter(quota_entry), _counter(usage_entry)
    new_states, new_count, decision = admit_state(states, count, buckets, quota, now=now, cost=cost)
    if not decision.allowed:
        return decision
    if cost:
        if quota is not None:
            _bump(store, quota.key, quota_entry, new_count, quota.ttl)
        if usage is not None:
            _bump(store, usage.key, usage_entry, used + cost, usage.ttl)
    for spec, entry, state in zip(buckets, entries, new_states, strict=True):
        if state is None:
            store._data.pop(spec.key, None)
        elif entry is not None:  # rewritten in place, which keeps its deadline's heap record
            entry.value = state
            store._set_deadline(spec.key, entry, reset_after(state.tokens, spec.rate, spec.burst))
        else:
            store._put(spec.key, state, reset_after(state.tokens, spec.rate, spec.burst))
    return decision


def _counter(entry: Entry | None) -> int:
    """The count an entry holds (0: absent or another kind); StoreError as INCRBY would say."""
    if entry is None or type(entry.value) is not bytes:
        return 0
    if INT_RE.fullmatch(entry.value) is None or abs(value := int(entry.value)) > MAX_TOKENS:
        raise StoreError(NOT_INT)  # ADMIT_LUA counts in doubles: exact up to 2**53
    return value


def _bump(store: MemoryStore, key: str, entry: Entry | None, value: int, ttl: float) -> None:
    """Store counter ``value``; the TTL only when this creates it (like ``Store.incr``)."""
    if entry is None or type(entry.value) is not bytes:
        store._put(key, str(value).encode(), ttl)
    else:
        entry.value = str(value).encode()

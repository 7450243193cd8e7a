"""What a store derives once from the specs of an admission (checked keys, a packed command).

Shared by the embedded and Redis stores' :meth:`~server.store.base.Store.admit`. Pure core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from server.throttle.admit import BucketSpec, QuotaSpec, UsageSpec, check_keys

__all__ = ["SpecCache"]

_T = TypeVar("_T")


class SpecCache(Generic[_T]):
    """What a store derives once from the specs of a call (their checked keys, a packed
    command), kept for the next call with the same spec objects.

    Callers pass the same cached spec tuples request after request (:mod:`server.throttle.levels`),
    so the entry is found by the tuple's identity and confirmed by identity of all three specs.
    Only tuples are kept (a list could change between calls; specs are frozen); at ``size``
    entries the cache starts over.
    """

    def __init__(
        self,
        derive: Callable[[list[str], Sequence[BucketSpec], QuotaSpec | None, UsageSpec | None], _T],
        *,
        size: int = 1 << 16,
    ) -> None:
        self._derive = derive
        self._size = size
        self._entries: dict[int, tuple[Sequence[BucketSpec], QuotaSpec | None, UsageSpec | None, _T]] = {}

    def get(self, buckets: Sequence[BucketSpec], quota: QuotaSpec | None, usage: UsageSpec | None) -> _T:
        """``derive(keys, buckets, quota, usage)`` (``keys`` from :func:`check_keys`), computed once
        per spec tuple; ValueError from :func:`check_keys` for specs that are not valid."""
        entry = self._entries.get(id(buckets))
        if entry is not None and entry[0] is buckets and entry[1] is quota and entry[2] is usage:
            return entry[3]
        derived = self._derive(check_keys(buckets, quota, usage), buckets, quota, usage)
        if type(buckets) is tuple:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[id(buckets)] = (buckets, quota, usage, derived)
        return derived

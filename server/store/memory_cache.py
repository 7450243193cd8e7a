"""The embedded store's response cache: bounded memory, least recently used evicted first.

A separate key space from the store's other keys (see :meth:`server.store.base.Store.cache_get`):
the stage cache must never grow the process without bound, so it has its own byte budget
instead of sharing the unbounded key space the counters and records live in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

__all__ = ["DEFAULT_CACHE_MAX_BYTES", "LruCache"]

DEFAULT_CACHE_MAX_BYTES = 64 * 1024 * 1024
# Bookkeeping per entry (key, tuple, OrderedDict node), counted so that many tiny entries
# cannot exceed the budget either.
_OVERHEAD = 128


class LruCache:
    """Entries ``key -> (value, expires_at)`` on ``clock``; at most ``max_bytes`` in total."""

    __slots__ = ("_clock", "_entries", "_max_bytes", "size")

    def __init__(self, clock: Callable[[], float], max_bytes: int = DEFAULT_CACHE_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes!r}")
        self._clock = clock
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self.size = 0  # bytes accounted, <= max_bytes

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _cost(key: str, value: bytes) -> int:
        return len(key) + len(value) + _OVERHEAD

    def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[1] <= self._clock():
            self._drop(key, found[0])
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: str, value: bytes, ttl: float) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= self._cost(key, old[0])
        cost = self._cost(key, value)
        if cost > self._max_bytes:
            return  # larger than the whole budget: not cached (best effort)
        while self.size + cost > self._max_bytes:
            oldest, (dropped, _) = self._entries.popitem(last=False)
            self.size -= self._cost(oldest, dropped)
        self._entries[key] = (value, self._clock() + ttl)
        self.size += cost

    def flush(self, prefix: str) -> int:
        doomed = [key for key in self._entries if key.startswith(prefix)]
        for key in doomed:
            self._drop(key, self._entries[key][0])
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

    def _drop(self, key: str, value: bytes) -> None:
        del self._entries[key]
        self.size -= self._cost(key, value)

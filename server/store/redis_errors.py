"""How the Redis store reports failures: StoreUnavailable (try later) vs StoreError (caller's fault)."""

from __future__ import annotations

from types import TracebackType

from redis.exceptions import (
    ClusterDownError,
    DataError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from server.store.base import StoreError, StoreUnavailable

__all__ = ["TRANSLATE", "reply_error"]

# Error replies that mean "Redis cannot serve right now" rather than "your command is wrong":
# the ones redis-py maps to classes (it strips their prefix), then the ones it leaves as text.
_TRANSIENT_REPLIES = (ReadOnlyError, OutOfMemoryError, TryAgainError, ClusterDownError)
_UNAVAILABLE_PREFIXES = ("LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "MISCONF", "READONLY", "OOM")


class _Translate:
    """``with TRANSLATE:`` re-raises a backend exception as the store's own, ``from`` it.

    Connection, timeout and socket errors, and error replies of a server that cannot serve
    right now (loading, read-only replica, failover, OOM), become :class:`StoreUnavailable`;
    other error replies (WRONGTYPE, not an integer) become :class:`StoreError`.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            return
        transient = isinstance(exc, _TRANSIENT_REPLIES) or str(exc).startswith(_UNAVAILABLE_PREFIXES)
        if isinstance(exc, ResponseError | DataError) and not transient:
            raise StoreError(str(exc)) from exc
        # RedisClusterException (no slot owner known, cluster not ready) is not a RedisError.
        if isinstance(exc, RedisError | RedisClusterException | OSError | TimeoutError):
            raise StoreUnavailable(f"redis unavailable: {exc!r}") from exc


TRANSLATE = _Translate()


def reply_error(message: str) -> StoreError:
    """The store's exception for an error reply read without redis-py (the pipelined client)."""
    if message.startswith(_UNAVAILABLE_PREFIXES):
        return StoreUnavailable(f"redis unavailable: {message}")
    return StoreError(message)

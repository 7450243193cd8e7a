"""Shared state of the gateway: one :class:`Store` contract, an embedded and a Redis backend.

Importing this package stays cheap and pure (no asyncio, no redis): the backends and
:func:`open_store` load on first use, so the pure core may import :mod:`server.store.bucket`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from server.store.base import BucketDecision, Store, StoreError, StoreUnavailable, Subscription

if TYPE_CHECKING:
    from server.store.factory import open_store
    from server.store.memory import MemoryStore
    from server.store.redis import RedisStore

__all__ = [
    "BucketDecision",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Subscription",
    "open_store",
]

_LAZY = {
    "open_store": "server.store.factory",
    "MemoryStore": "server.store.memory",
    "RedisStore": "server.store.redis",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

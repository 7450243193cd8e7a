"""The REST stage cache phase (aws-contract.md §4): answer from the store, or let the request
through and keep what the integration returns.

Built only when some stage has caching on (server/app.py), so it costs nothing otherwise. The
rules are :mod:`server.cache.policy`'s, the keys :mod:`server.cache.keys`'s; entries live in the
store (:meth:`~server.store.base.Store.cache_get`), so every node sharing a Redis shares them.

On a hit the integration is not called and nothing marks the answer as cached (AWS adds no
header); ``hits`` and ``misses`` count them for ``/@metrics``. The cache is best effort: a store
that fails is a miss (counted in ``store_errors``) and a response it cannot keep is still sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from server.cache.entry import MAX_BODY_BYTES, CachedResponse, decode, encode
from server.cache.keys import cache_key
from server.cache.policy import IGNORED_WARNING, MethodCache, invalidation, method_cache, wants_fresh
from server.config.model import RouteConfig, StageConfig
from server.errors import AccessDenied
from server.messages import HttpResponse
from server.pipeline import RequestContext
from server.store.base import Store, StoreError

__all__ = ["CacheStage"]

log = logging.getLogger("portway.cache")

_MEMO_ENTRIES = 256
_MEMO_ENTRY_BYTES = 16 * 1024


class CacheStage:
    """See the module docstring. ``clock``: wall seconds (entries expire on it)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        # (route, stage) -> rules; the configuration is immutable, so resolved once each.
        self._rules: dict[tuple[int, int], MethodCache | None] = {}
        # Keys of routes without cache key parameters depend on the route, stage and method only.
        self._fixed_keys: dict[tuple[int, int, str], str] = {}
        # Recently decoded entries by their stored bytes: a hot entry is decoded once, not per hit
        # (bytes cache their hash; the embedded store even hands back the same object). Small
        # entries only, and few, so it stays a few MiB at most.
        self._decoded: dict[bytes, CachedResponse] = {}
        self.hits = 0
        self.misses = 0
        self.store_errors = 0

    def _rules_for(self, stage: StageConfig, route: RouteConfig) -> MethodCache | None:
        key = (id(route), id(stage))
        try:
            return self._rules[key]
        except KeyError:
            rules = self._rules[key] = method_cache(stage, route)
            return rules

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        dispatch, match = ctx.dispatch, ctx.match
        assert dispatch is not None and match is not None  # RouteStage ran
        rules = self._rules_for(dispatch.stage, match.route)
        request = ctx.request
        if rules is None or not rules.applies(request.method):
            return None
        if rules.key_parameters:
            key = cache_key(
                dispatch.api.id,
                dispatch.stage.name,
                request.method,
                match.resource,
                rules.key_parameters,
                request,
                match.path_parameters,
            )
        else:
            fixed = (id(match.route), id(dispatch.stage), request.method)
            found = self._fixed_keys.get(fixed)
            if found is None:
                found = self._fixed_keys[fixed] = cache_key(
                    dispatch.api.id, dispatch.stage.name, request.method, match.resource, (), request, None
                )
            key = found
        if wants_fresh(request.header("cache-control")):
            decision = invalidation(rules, ctx.auth)
            if decision.deny:
                raise AccessDenied()
            if decision.warn:
                ctx.response_headers.append(IGNORED_WARNING)
            if decision.refresh:
                self.misses += 1
                ctx.cache_store = self._storer(key, rules.ttl_s)
                return None
        now = self._clock()
        raw = await self._get(key)
        if raw is not None:
            entry = self._decoded.get(raw)
            if entry is None:
                entry = decode(raw)
                if entry is not None and len(raw) <= _MEMO_ENTRY_BYTES:
                    if len(self._decoded) >= _MEMO_ENTRIES:
                        self._decoded.clear()
                    self._decoded[raw] = entry
            if entry is not None and entry.expires_at > now:
                self.hits += 1
                return entry.response()
        self.misses += 1
        ctx.cache_store = self._storer(key, rules.ttl_s)
        return None

    def _storer(self, key: str, ttl_s: int) -> Callable[[HttpResponse], Awaitable[None]]:
        async def store(response: HttpResponse) -> None:
            await self._put(key, response, ttl_s)

        return store

    async def _get(self, key: str) -> bytes | None:
        try:
            return await self._store.cache_get(key)
        except StoreError as exc:
            self._failed(exc)
            return None

    async def _put(self, key: str, response: HttpResponse, ttl_s: int) -> None:
        if len(response.body) > MAX_BODY_BYTES:
            return  # larger than AWS caches: sent, not kept
        try:
            await self._store.cache_put(key, encode(response, self._clock() + ttl_s), ttl=ttl_s)
        except StoreError as exc:
            self._failed(exc)

    def _failed(self, exc: StoreError) -> None:
        if self.store_errors == 0 or self.store_errors % 1000 == 0:
            log.warning("stage cache: store failed (served uncached): %s", exc)
        self.store_errors += 1

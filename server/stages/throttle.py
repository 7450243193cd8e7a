"""API keys, usage plans and throttling for REST and HTTP API routes (reference §3).

Runs after :class:`server.pipeline.RouteStage` (and, once they exist, the authorizers). For a
route with ``apiKeyRequired``, the ``x-api-key`` header must name an enabled key that is in a
usage plan covering this API stage (else 403 ``Forbidden``); keys are ignored on other routes,
as AWS does. Then one :meth:`Store.admit <server.store.base.Store.admit>` call decides every
level at once (:mod:`server.throttle.levels`): refused by a bucket, 429 ``Too Many Requests``
with ``Retry-After``; by the quota, 429 ``Limit Exceeded`` (no ``Retry-After``, like AWS).

The registry lookup reads the node's copy (:class:`server.keys.registry.KeyRegistry`), so a
keyed request costs one store round trip, the same as an unkeyed one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from server.config.model import GatewayConfig
from server.errors import InvalidApiKey
from server.keys.registry import KeyRegistry
from server.messages import HttpResponse
from server.pipeline import RequestContext
from server.store.base import Store
from server.throttle.admission import Admission, rate_limit_headers
from server.throttle.levels import ThrottleLevels

__all__ = ["ThrottleStage"]


class ThrottleStage:
    """Check the API key and admit or refuse each routed request; see the module docstring."""

    def __init__(
        self,
        store: Store,
        config: GatewayConfig,
        registry: KeyRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._registry = registry
        self._registry_version = -1
        self._levels = ThrottleLevels(config)
        self._headers = config.rate_limit_headers
        self.admission = Admission(store, config)

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        dispatch, match, info = ctx.dispatch, ctx.match, ctx.info
        assert dispatch is not None and match is not None and info is not None  # RouteStage ran
        now = self._clock()
        route = match.route
        if route.api_key_required:
            registry = self._registry
            value = ctx.request.header("x-api-key")
            if registry is None:
                raise InvalidApiKey()
            if registry.version != self._registry_version:
                self._levels.clear_keyed()
                self._registry_version = registry.version
            found = registry.resolve(value, dispatch.api.id, dispatch.stage.name)
            if found is None:
                raise InvalidApiKey()
            key, plan = found
            levels = self._levels.keyed_levels(
                dispatch.api, dispatch.stage, route.route_key, plan, key.id, now
            )
            info.identity_extra = {"apiKey": value, "apiKeyId": key.id}
        else:
            levels = self._levels.route_levels(dispatch.api, dispatch.stage, route)
            if levels.idle:  # the account bucket is off and no stage level applies
                return None
        if self._headers:
            decision = await self.admission.decide(levels, now, raise_refusal=False)
            ctx.response_headers.extend(rate_limit_headers(levels, decision, now))
            if decision is not None and not decision.allowed:
                self.admission.raise_refusal(levels, decision)
        else:
            await self.admission.decide(levels, now)
        return None

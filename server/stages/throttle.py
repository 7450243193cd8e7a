"""API keys, usage plans and throttling for REST and HTTP API routes (aws-contract.md §3).

Runs after :class:`server.pipeline.RouteStage` and the authorize phase. For a route with
``apiKeyRequired``, the ``x-api-key`` header (``apiKeySource: AUTHORIZER``: the Lambda
authorizer's ``usageIdentifierKey``) must name an enabled key that is in a usage plan covering
this API stage (else 403 ``Forbidden``); keys are ignored on other routes,
as AWS does. Then one :meth:`Store.admit <server.store.base.Store.admit>` call decides every
level at once (:mod:`server.throttle.levels`): refused by a bucket, 429 ``Too Many Requests``
with ``Retry-After``; by the quota, 429 ``Limit Exceeded`` (no ``Retry-After``, like AWS).

The registry lookup reads the node's copy (:class:`server.keys.registry.KeyRegistry`), so a
keyed request costs one store round trip, the same as an unkeyed one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from server.config.model import ApiConfig, GatewayConfig, StageConfig
from server.errors import InvalidApiKey
from server.keys.registry import KeyRegistry
from server.messages import HttpResponse
from server.pipeline import RequestContext
from server.store.base import Store
from server.throttle.admission import Admission, rate_limit_headers
from server.throttle.levels import Levels, ThrottleLevels

__all__ = ["ThrottleStage"]

_HOT_MAX = 65536


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
        self._levels = ThrottleLevels(config)
        # (x-api-key value, route, stage) -> (the event's identity fields, levels) for keys seen
        # recently: one dict lookup instead of digest + registry + levels per request. Only
        # admitted keys are cached (random invalid keys cannot grow it); emptied on any registry
        # change. The identity mapping is shared by the requests of that key (events only read it).
        self._hot: dict[tuple[str, int, int], tuple[Mapping[str, str], Levels]] = {}
        self._headers = config.rate_limit_headers
        self.admission = Admission(store)

    def _resolve(
        self, value: str, api: ApiConfig, stage: StageConfig, route_key: str, now: float
    ) -> tuple[Mapping[str, str], Levels]:
        assert self._registry is not None
        found = self._registry.resolve(value, api.id, stage.name)
        if found is None:
            raise InvalidApiKey()
        key, plan = found
        identity = MappingProxyType({"apiKey": value, "apiKeyId": key.id})
        return identity, self._levels.keyed_levels(api, stage, route_key, plan, key.id, now)

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        dispatch, match, info = ctx.dispatch, ctx.match, ctx.info
        assert dispatch is not None and match is not None and info is not None  # RouteStage ran
        now = self._clock()
        route = match.route
        if route.api_key_required:
            registry = self._registry
            if dispatch.api.api_key_source == "AUTHORIZER":
                # The Lambda authorizer's usageIdentifierKey picks the plan key (§3.2).
                value = ctx.auth.usage_identifier_key if ctx.auth is not None else None
            else:
                value = ctx.request.header("x-api-key")
            if registry is None or not value:
                raise InvalidApiKey()
            if self._levels.at_version(registry.version):
                self._hot.clear()
            hot_key = (value, id(route), id(dispatch.stage))
            hot = self._hot.get(hot_key)
            if hot is None or now >= hot[1].until:
                hot = self._resolve(value, dispatch.api, dispatch.stage, route.route_key, now)
                if len(self._hot) >= _HOT_MAX:
                    self._hot.clear()
                self._hot[hot_key] = hot
            key_identity, levels = hot
            # Merged, not replaced: the authorize phase may have set the IAM caller's fields.
            info.identity_extra = (
                {**info.identity_extra, **key_identity} if info.identity_extra else key_identity
            )
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

"""Stage, method and account throttling for REST and HTTP API routes (reference §3.1).

Runs after :class:`server.pipeline.RouteStage`. A request passes AWS's token buckets, most specific
first: the method bucket (when the stage configures one for the route key), the stage default
(when configured), then the account bucket shared by every API and stage. One
:meth:`Store.admit <server.store.base.Store.admit>` call decides for all of them atomically, so a
level that refuses consumes nothing upstream. Refused: 429 ``Too Many Requests`` with
``Retry-After``.

The buckets of each (API, stage, route) are built once, not per request. When the store is
unreachable, ``GatewayConfig.throttle_failure`` decides: ``open`` admits the request (counted in
``store_errors``, one warning per outage), ``closed`` answers 429.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from server.config.model import ApiConfig, ApiKind, GatewayConfig, RouteConfig, StageConfig
from server.errors import Throttled
from server.messages import HttpResponse
from server.pipeline import RequestContext
from server.store.base import Store, StoreUnavailable
from server.throttle.admit import BucketSpec, throttle_key

__all__ = ["ThrottleStage", "account_key", "method_key", "stage_key"]

log = logging.getLogger("portway.throttle")

_Key = tuple[str, str, int]  # (api id, stage name, id(route))


def account_key() -> str:
    return throttle_key("acct")


def stage_key(api_id: str, stage: str) -> str:
    return throttle_key("stage", f"{api_id}/{stage}")


def method_key(api_id: str, stage: str, route_key: str) -> str:
    return throttle_key("method", f"{api_id}/{stage}/{route_key}")


class ThrottleStage:
    """Admit or refuse each routed request; see the module docstring."""

    def __init__(self, store: Store, config: GatewayConfig, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._fail_open = config.throttle_failure != "closed"
        account = config.account_throttle
        self._account = BucketSpec(account_key(), account.rate, account.burst)
        self._buckets: dict[_Key, tuple[BucketSpec, ...]] = {}
        for api in config.apis:
            if api.kind is ApiKind.WEBSOCKET:
                continue
            for stage in api.stages:
                for route in api.routes:
                    self._buckets[(api.id, stage.name, id(route))] = self._build(api, stage, route)
        self._failing = False
        self.checked = 0
        self.limited = 0
        self.store_errors = 0

    def _build(self, api: ApiConfig, stage: StageConfig, route: RouteConfig) -> tuple[BucketSpec, ...]:
        buckets: list[BucketSpec] = []
        method = stage.method_throttles.get(route.route_key)
        if method is not None:
            buckets.append(
                BucketSpec(method_key(api.id, stage.name, route.route_key), method.rate, method.burst)
            )
        if stage.throttle is not None:
            settings = stage.throttle
            buckets.append(BucketSpec(stage_key(api.id, stage.name), settings.rate, settings.burst))
        buckets.append(self._account)
        return tuple(buckets)

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        dispatch, match = ctx.dispatch, ctx.match
        assert dispatch is not None and match is not None  # RouteStage ran
        key = (dispatch.api.id, dispatch.stage.name, id(match.route))
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = self._buckets[key] = self._build(dispatch.api, dispatch.stage, match.route)
        self.checked += 1
        try:
            decision = await self._store.admit(buckets, now=self._clock())
        except StoreUnavailable as exc:
            self.store_errors += 1
            if not self._failing:
                self._failing = True
                log.warning(
                    "throttling store unavailable (%s): failing %s until it returns",
                    exc,
                    "open" if self._fail_open else "closed",
                )
            if self._fail_open:
                return None
            self.limited += 1
            raise Throttled() from exc
        if self._failing:
            self._failing = False
            log.warning("throttling store available again")
        if not decision.allowed:
            self.limited += 1
            retry = decision.retry_after
            seconds = max(1, math.ceil(retry)) if math.isfinite(retry) else 86400
            raise Throttled(headers={"Retry-After": str(seconds)})
        return None

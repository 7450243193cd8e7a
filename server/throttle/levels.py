"""Which token buckets, quota and usage counter one request (or WebSocket message) must pass.

Reference: docs/aws-contract.md §3.1 and §3.3; AWS's order, most specific first:

1. the API key's usage plan (only on routes with ``apiKeyRequired``): the plan's per-route
   throttle for this API stage when it has one, else the plan's throttle. One bucket per
   (plan, key) is shared by every stage of the plan (AWS: limits apply per key, summed across
   the plan's stages); a per-route plan throttle *replaces* the plan throttle for that route
   (the reference leaves replace-vs-add unverified and suggests replacing);
2. the stage: the route's ``methodThrottles`` entry, else the stage default ``throttle``. Both
   are per route: the stage default gives *each* route its own bucket with those limits (AWS's
   ``*/*`` method setting), and a route's own entry replaces it;
3. the account bucket, shared by every API, stage and route of the gateway;

then the plan's quota for the current period, per (plan, key). Admitted requests of a keyed
route are counted per (plan, key, UTC day) for GetUsage.

Everything here is computed once and cached: per (API, stage, route) without a key, per
(plan, key, API, stage, route) with one, and the quota/usage specs until their period ends.
Callers pass the registry's version (:meth:`ThrottleLevels.at_version`): a new one drops the keyed caches.

Pure core: imports no I/O library; ``now`` is an argument.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from server.config.model import ApiConfig, GatewayConfig, RouteConfig, StageConfig, UsagePlanConfig
from server.throttle.admit import BucketSpec, QuotaSpec, UsageSpec, throttle_key
from server.throttle.quota import DAY_S, QuotaPeriod, QuotaWindow, quota_window

__all__ = [
    "USAGE_DAYS",
    "Levels",
    "ThrottleLevels",
    "account_key",
    "method_key",
    "plan_bucket_key",
    "plan_method_key",
    "quota_key",
    "usage_day",
    "usage_key",
]

USAGE_DAYS = 90
"""Days a per-key daily usage counter is kept (AWS's GetUsage reaches 90 days back)."""


def account_key() -> str:
    return throttle_key("acct")


def method_key(api_id: str, stage: str, route_key: str) -> str:
    return throttle_key("method", f"{api_id}/{stage}/{route_key}")


def plan_bucket_key(plan_id: str, key_id: str) -> str:
    return throttle_key("plan", plan_id, key_id)


def plan_method_key(plan_id: str, key_id: str, api_id: str, stage: str, route_key: str) -> str:
    return throttle_key("planm", plan_id, key_id, f"{api_id}/{stage}/{route_key}")


def quota_key(plan_id: str, key_id: str, window: QuotaWindow) -> str:
    return throttle_key("q", plan_id, key_id, window.key_suffix)


def usage_day(now: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(now))


def usage_key(plan_id: str, key_id: str, day: str) -> str:
    return throttle_key("u", plan_id, key_id, day)


@dataclass(frozen=True, slots=True)
class Levels:
    """What one request passes: ``buckets`` in order, then ``quota``; ``usage`` counts it.
    ``idle``: nothing at all to check (no bucket applies, no key): no store call."""

    buckets: tuple[BucketSpec, ...]
    quota: QuotaSpec | None = None
    usage: UsageSpec | None = None
    quota_window: QuotaWindow | None = None
    fail_open: bool = True
    """The API's ``throttleFailure`` (else the gateway's): admit when the store is unreachable."""
    until: float = float("inf")
    """Valid until then (epoch seconds): the end of the quota period or usage day it names."""

    @property
    def idle(self) -> bool:
        return not self.buckets and self.usage is None


@dataclass(slots=True)
class _Period:
    """Quota and usage specs of one (plan, key), valid until ``until``."""

    until: float
    quota: QuotaSpec | None
    usage: UsageSpec
    window: QuotaWindow | None


class ThrottleLevels:
    """Builds (and caches) :class:`Levels`; see the module docstring."""

    def __init__(self, config: GatewayConfig) -> None:
        account = config.account_throttle
        self._fail_open_default = config.throttle_failure != "closed"
        self._account: tuple[BucketSpec, ...] = (
            () if account is None else (BucketSpec(account_key(), account.rate, account.burst),)
        )
        self._routes: dict[tuple[str, str, int], Levels] = {}
        self._messages: dict[tuple[str, str, str], Levels] = {}
        self._keyed: dict[tuple[str, str, str, str, str], tuple[BucketSpec, ...]] = {}
        self._periods: dict[tuple[str, str], _Period] = {}
        self._version = -1

    def at_version(self, version: int) -> bool:
        """Follow the key registry's ``version``: the first call with a new one drops the keyed
        caches (plans or keys changed) and returns True, so callers drop theirs too."""
        if version == self._version:
            return False
        self._version = version
        self._keyed.clear()
        self._periods.clear()
        return True

    def route_levels(self, api: ApiConfig, stage: StageConfig, route: RouteConfig) -> Levels:
        """Stage and account buckets of a route (no key)."""
        cache_key = (api.id, stage.name, id(route))
        levels = self._routes.get(cache_key)
        if levels is None:
            levels = self._routes[cache_key] = Levels(
                self._stage_buckets(api, stage, route.route_key), fail_open=self._fail_open(api)
            )
        return levels

    def message_levels(self, api: ApiConfig, stage: StageConfig, route_key: str) -> Levels:
        """WebSocket: the same, for a message selected to ``route_key``."""
        cache_key = (api.id, stage.name, route_key)
        levels = self._messages.get(cache_key)
        if levels is None:
            levels = self._messages[cache_key] = Levels(
                self._stage_buckets(api, stage, route_key), fail_open=self._fail_open(api)
            )
        return levels

    def keyed_levels(
        self,
        api: ApiConfig,
        stage: StageConfig,
        route_key: str,
        plan: UsagePlanConfig,
        key_id: str,
        now: float,
    ) -> Levels:
        """Plan bucket, stage and account buckets, quota and usage for a request with a key."""
        cache_key = (plan.id, key_id, api.id, stage.name, route_key)
        buckets = self._keyed.get(cache_key)
        if buckets is None:
            stage_buckets = self._stage_buckets(api, stage, route_key)
            plan_bucket = self._plan_bucket(api, stage, route_key, plan, key_id)
            buckets = (plan_bucket, *stage_buckets) if plan_bucket is not None else stage_buckets
            self._keyed[cache_key] = buckets
        period = self._periods.get((plan.id, key_id))
        if period is None or now >= period.until:
            period = self._periods[(plan.id, key_id)] = self._period(plan, key_id, now)
        return Levels(buckets, period.quota, period.usage, period.window, self._fail_open(api), period.until)

    def _fail_open(self, api: ApiConfig) -> bool:
        if api.throttle_failure is None:
            return self._fail_open_default
        return api.throttle_failure != "closed"

    def _stage_buckets(self, api: ApiConfig, stage: StageConfig, route_key: str) -> tuple[BucketSpec, ...]:
        settings = stage.method_throttles.get(route_key) or stage.throttle
        if settings is None:
            return self._account
        return (
            BucketSpec(method_key(api.id, stage.name, route_key), settings.rate, settings.burst),
            *self._account,
        )

    @staticmethod
    def _plan_bucket(
        api: ApiConfig, stage: StageConfig, route_key: str, plan: UsagePlanConfig, key_id: str
    ) -> BucketSpec | None:
        entry = plan.stage_of(api.id, stage.name)
        method = entry.method_throttles.get(route_key) if entry is not None else None
        if method is not None:
            return BucketSpec(
                plan_method_key(plan.id, key_id, api.id, stage.name, route_key), method.rate, method.burst
            )
        if plan.throttle is not None:
            return BucketSpec(plan_bucket_key(plan.id, key_id), plan.throttle.rate, plan.throttle.burst)
        return None

    @staticmethod
    def _period(plan: UsagePlanConfig, key_id: str, now: float) -> _Period:
        day_start = int(now // DAY_S) * DAY_S
        until = float(day_start + DAY_S)
        usage = UsageSpec(usage_key(plan.id, key_id, usage_day(now)), until - now + USAGE_DAYS * DAY_S)
        if plan.quota is None:
            return _Period(until, None, usage, None)
        window = quota_window(
            QuotaPeriod(plan.quota.period),
            plan.quota.limit,
            now,
            offset=plan.quota.offset,
            plan_start=plan.created,
        )
        quota = QuotaSpec.for_window(quota_key(plan.id, key_id, window), window, now)
        return _Period(min(until, float(window.end)), quota, usage, window)

"""Which levels a request passes (server.throttle.levels), and the whole pure decision chain
(levels -> admit_state) under a fake clock: quotas per period, usage per day, buckets."""

from __future__ import annotations

import calendar
import collections
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    PlanStage,
    QuotaSettings,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
    UsagePlanConfig,
)
from server.store.bucket import BucketState
from server.throttle.admit import admit_state
from server.throttle.levels import ThrottleLevels, account_key, method_key, plan_bucket_key, plan_method_key
from server.throttle.quota import QuotaPeriod, quota_window

MOCK = IntegrationConfig(type=IntegrationType.MOCK)
PETS = RouteConfig("GET", "/pets", MOCK)
TOYS = RouteConfig("GET", "/toys", MOCK)


def api(stage: StageConfig) -> ApiConfig:
    return ApiConfig(name="a", id="apiid", kind=ApiKind.REST, stages=(stage,), routes=(PETS, TOYS))


def plan(**kwargs: object) -> UsagePlanConfig:
    defaults: dict[str, object] = {"id": "p", "name": "p", "stages": (PlanStage("apiid", "dev"),)}
    defaults.update(kwargs)
    return UsagePlanConfig(**defaults)  # type: ignore[arg-type]


def test_stage_default_is_per_route_and_a_method_entry_replaces_it() -> None:
    stage = StageConfig(
        "dev",
        throttle=ThrottleSettings(5, 10),
        method_throttles=MappingProxyType({"GET /pets": ThrottleSettings(1, 2)}),
    )
    a = api(stage)
    levels = ThrottleLevels(GatewayConfig(apis=(a,)))
    pets = levels.route_levels(a, stage, PETS).buckets
    toys = levels.route_levels(a, stage, TOYS).buckets
    assert [(b.key, b.rate, b.burst) for b in pets] == [
        (method_key("apiid", "dev", "GET /pets"), 1, 2),
        (account_key(), 10000, 5000),
    ]
    assert [(b.key, b.rate, b.burst) for b in toys] == [
        (method_key("apiid", "dev", "GET /toys"), 5, 10),
        (account_key(), 10000, 5000),
    ]


def test_keyed_order_plan_then_stage_then_account_and_plan_route_throttle_replaces() -> None:
    stage = StageConfig("dev", throttle=ThrottleSettings(5, 10))
    a = api(stage)
    levels = ThrottleLevels(GatewayConfig(apis=(a,)))
    p = plan(
        stages=(PlanStage("apiid", "dev", MappingProxyType({"GET /toys": ThrottleSettings(3, 3)})),),
        throttle=ThrottleSettings(7, 7),
    )
    pets = levels.keyed_levels(a, stage, "GET /pets", p, "k1", now=0).buckets
    toys = levels.keyed_levels(a, stage, "GET /toys", p, "k1", now=0).buckets
    assert [b.key for b in pets] == [
        plan_bucket_key("p", "k1"),
        method_key("apiid", "dev", "GET /pets"),
        account_key(),
    ]
    assert toys[0].key == plan_method_key("p", "k1", "apiid", "dev", "GET /toys")
    assert (toys[0].rate, toys[0].burst) == (3, 3)


def test_account_off_and_no_stage_level_is_idle() -> None:
    stage = StageConfig("dev")
    a = api(stage)
    levels = ThrottleLevels(GatewayConfig(apis=(a,), account_throttle=None))
    assert levels.route_levels(a, stage, PETS).idle
    # A key always counts usage, so a keyed request is never idle.
    assert not levels.keyed_levels(a, stage, "GET /pets", plan(), "k", now=0).idle


def test_quota_spec_rolls_over_at_the_period_end() -> None:
    stage = StageConfig("dev")
    a = api(stage)
    levels = ThrottleLevels(GatewayConfig(apis=(a,)))
    p = plan(quota=QuotaSettings(10, "DAY"))
    day = calendar.timegm((2026, 11, 25, 0, 0, 0))
    before = levels.keyed_levels(a, stage, "GET /pets", p, "k", now=day + 86_399.5)
    after = levels.keyed_levels(a, stage, "GET /pets", p, "k", now=day + 86_400)
    assert before.quota is not None and after.quota is not None
    assert before.quota.key.endswith("20261125") and after.quota.key.endswith("20261126")
    assert before.usage is not None and after.usage is not None and before.usage.key != after.usage.key
    # Callers may keep a Levels until its `until`: the end of the day (or quota period) it names.
    assert (before.until, after.until) == (day + 86_400, day + 2 * 86_400)


@settings(max_examples=60, deadline=None)
@given(
    period=st.sampled_from(["DAY", "WEEK", "MONTH"]),
    limit=st.integers(0, 40),
    gaps=st.lists(st.floats(min_value=0, max_value=5 * 86_400, allow_nan=False), min_size=1, max_size=120),
)
def test_quota_admits_exactly_min_of_demand_and_limit_per_period(
    period: str, limit: int, gaps: list[float]
) -> None:
    """Requests at random times over weeks: in every quota period the admitted count is
    min(requests in it, limit); daily usage counters add up to what was admitted that day."""
    stage = StageConfig("dev")
    a = api(stage)
    levels = ThrottleLevels(GatewayConfig(apis=(a,), account_throttle=None))
    p = plan(quota=QuotaSettings(limit, period))
    buckets: dict[str, BucketState | None] = {}
    counters: collections.Counter[str] = collections.Counter()
    usage: collections.Counter[str] = collections.Counter()
    asked: collections.Counter[int] = collections.Counter()
    admitted: collections.Counter[int] = collections.Counter()
    now = float(calendar.timegm((2026, 1, 1, 0, 0, 0)))
    for gap in gaps:
        now += gap
        found = levels.keyed_levels(a, stage, "GET /pets", p, "k", now=now)
        assert found.quota is not None and found.usage is not None
        window = quota_window(QuotaPeriod(period), limit, now)
        asked[window.start] += 1
        states = [buckets.get(spec.key) for spec in found.buckets]
        new_states, count, decision = admit_state(
            states, counters[found.quota.key], found.buckets, found.quota, now=now
        )
        if decision.allowed:
            for spec, state in zip(found.buckets, new_states, strict=True):
                buckets[spec.key] = state
            counters[found.quota.key] = count
            usage[found.usage.key] += 1
            admitted[window.start] += 1
    for start, demand in asked.items():
        assert admitted[start] == min(demand, limit)
    assert sum(usage.values()) == sum(admitted.values())

"""Usage plans and API keys of a template: ``AWS::ApiGateway::UsagePlan``/``ApiKey``/``UsagePlanKey``
and SAM's ``Auth.UsagePlan`` (``CreateUsagePlan: PER_API`` or ``SHARED``), enforced as AWS would.

A key without a ``Value`` is generated at the first start and logged once, as for the other
formats; SAM's own keys (``<Api>ApiKey``) are such keys.
"""

from __future__ import annotations

from typing import Any

from server.config.errors import loc
from server.config.model import (
    ApiKeyConfig,
    PlanStage,
    QuotaSettings,
    ThrottleSettings,
    UsagePlanConfig,
)
from server.config.route_keys import normalize as normalize_route_key
from server.config.rules import QUOTA_PERIODS, BuiltKey, BuiltPlan, check_quota
from server.config.template import Template

__all__ = ["read_plans"]

PLAN, KEY, PLAN_KEY = "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlanKey"


def read_plans(
    t: Template, sam_plans: dict[str, dict[str, Any]]
) -> tuple[list[BuiltPlan], list[BuiltKey], set[str]]:
    """The plans and keys, and the logical ids read. ``sam_plans``: API logical id -> its
    ``Auth.UsagePlan``."""
    plans: list[BuiltPlan] = []
    keys: dict[str, tuple[ApiKeyConfig, str]] = {}
    handled: set[str] = set()
    for logical_id, body in t.resources.items():
        props, where = body.get("Properties") or {}, loc(loc("Resources", logical_id), "Properties")
        if body.get("Type") == PLAN:
            handled.add(logical_id)
            built = _plan(t, logical_id, props, where)
            if built is not None:
                plans.append(built)
        elif body.get("Type") == KEY:
            handled.add(logical_id)
            for field in ("StageKeys", "GenerateDistinctId", "CustomerId"):
                if field in props:
                    t.issues.warn(loc(where, field), f"{field} is not applied (ignored)")
            name = t.text(props.get("Name", logical_id), loc(where, "Name"), "key name") or logical_id
            value = t.text(props["Value"], loc(where, "Value"), "key value") if "Value" in props else None
            keys[logical_id] = (
                ApiKeyConfig(
                    name,
                    value,
                    props.get("Enabled", True) is not False,
                    (),
                    str(props.get("Description", "")),
                ),
                where,
            )
    links: dict[str, list[str]] = {}
    for logical_id, body in t.resources.items():
        if body.get("Type") != PLAN_KEY:
            continue
        handled.add(logical_id)
        props, where = body.get("Properties") or {}, loc(loc("Resources", logical_id), "Properties")
        key_id, plan = t.ref_target(props.get("KeyId")), t.ref_target(props.get("UsagePlanId"))
        if (
            key_id is None
            or key_id not in keys
            or plan is None
            or t.resources.get(plan, {}).get("Type") != PLAN
        ):
            t.issues.error(
                where, "KeyId and UsagePlanId must be !Ref of an ApiKey and a UsagePlan in this template"
            )
            continue
        links.setdefault(key_id, []).append(plan)
    shared: list[PlanStage] = []
    shared_limits: tuple[ThrottleSettings | None, QuotaSettings | None] = (None, None)
    for api_logical, settings in sam_plans.items():
        draft = t.apis.get(api_logical)
        create = str(settings.get("CreateUsagePlan", "NONE")).upper()
        where = loc(loc(loc("Resources", api_logical), "Properties"), "Auth")
        if draft is None or create == "NONE":
            continue
        limits = (
            _throttle(t, settings.get("Throttle"), loc(where, "UsagePlan")),
            _quota(t, settings.get("Quota"), loc(where, "UsagePlan")),
        )
        stage = PlanStage(draft.id, draft.stage)
        if create == "SHARED":
            shared.append(stage)
            shared_limits = limits
            continue
        if create != "PER_API":
            t.issues.error(
                loc(where, "UsagePlan"), f"CreateUsagePlan {create!r}: use PER_API, SHARED or NONE"
            )
            continue
        plan_id = f"{api_logical}UsagePlan"
        plans.append(BuiltPlan(UsagePlanConfig(plan_id, plan_id, (stage,), *limits), where, (where,)))
        keys[f"{api_logical}ApiKey"] = (ApiKeyConfig(f"{api_logical}ApiKey", plans=(plan_id,)), where)
    if shared:
        where = "Globals.Api.Auth.UsagePlan"
        plans.append(
            BuiltPlan(
                UsagePlanConfig("ServerlessUsagePlan", "ServerlessUsagePlan", tuple(shared), *shared_limits),
                where,
                tuple(where for _ in shared),
            )
        )
        keys["ServerlessApiKey"] = (ApiKeyConfig("ServerlessApiKey", plans=("ServerlessUsagePlan",)), where)
    built_keys = []
    for logical_id, (key, where) in keys.items():
        plan_ids = links.get(logical_id, [])
        if plan_ids:
            key = ApiKeyConfig(key.name, key.value, key.enabled, tuple(plan_ids), key.description)
        built_keys.append(
            BuiltKey(key, loc(where, "Name"), loc(where, "Value"), tuple(where for _ in key.plans))
        )
    return plans, built_keys, handled


def _plan(t: Template, logical_id: str, props: dict[str, Any], where: str) -> BuiltPlan | None:
    stages: list[PlanStage] = []
    locations: list[str] = []
    for index, entry in enumerate(props.get("ApiStages") or ()):
        at = loc(loc(where, "ApiStages"), index)
        api = t.ref_target(entry.get("ApiId")) if isinstance(entry, dict) else None
        draft = t.apis.get(api or "")
        if draft is None:
            t.issues.error(loc(at, "ApiId"), "must be !Ref of a REST API in this template")
            return None
        stage_raw = entry.get("Stage")
        stage_ref = t.ref_target(stage_raw)
        if stage_ref is not None and t.resources.get(stage_ref, {}).get("Type") == "AWS::ApiGateway::Stage":
            stage_raw = (t.resources[stage_ref].get("Properties") or {}).get("StageName")
        stage = t.text(stage_raw, loc(at, "Stage"), "stage") or draft.stage
        throttles = {}
        for route_key, raw in (entry.get("Throttle") or {}).items():
            setting = _throttle(t, raw, loc(loc(at, "Throttle"), str(route_key)))
            if setting is not None:
                throttles[normalize_route_key(str(route_key))] = setting
        stages.append(PlanStage(draft.id, stage, throttles))
        locations.append(at)
    name = (
        t.text(props.get("UsagePlanName", logical_id), loc(where, "UsagePlanName"), "plan name") or logical_id
    )
    plan = UsagePlanConfig(
        logical_id,
        name,
        tuple(stages),
        _throttle(t, props.get("Throttle"), loc(where, "Throttle")),
        _quota(t, props.get("Quota"), loc(where, "Quota")),
        str(props.get("Description", "")),
    )
    return BuiltPlan(plan, where, tuple(locations))


def _throttle(t: Template, raw: Any, where: str) -> ThrottleSettings | None:
    if raw is None:
        return None
    rate, burst = (raw.get("RateLimit"), raw.get("BurstLimit")) if isinstance(raw, dict) else (None, None)
    if not isinstance(rate, int | float) or not isinstance(burst, int) or rate < 0 or burst < 0:
        t.issues.error(where, "Throttle is {RateLimit: number >= 0, BurstLimit: integer >= 0}")
        return None
    return ThrottleSettings(float(rate), burst)


def _quota(t: Template, raw: Any, where: str) -> QuotaSettings | None:
    if raw is None:
        return None
    limit, period, offset = (
        (raw.get("Limit"), raw.get("Period", "DAY"), raw.get("Offset", 0))
        if isinstance(raw, dict)
        else (None, None, None)
    )
    if not isinstance(limit, int) or period not in QUOTA_PERIODS or not isinstance(offset, int):
        t.issues.error(where, "Quota is {Limit: integer, Period: DAY|WEEK|MONTH, Offset: integer}")
        return None
    quota = QuotaSettings(limit, str(period), offset)
    check_quota(quota, where, t.issues)
    return quota

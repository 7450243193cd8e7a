"""Portway's native YAML format (``portway: 1``) -> :class:`~server.config.model.GatewayConfig`.

Two passes: the document is first checked against ``portway.schema.json`` (the same schema editors
use), every schema error becoming a :class:`~server.config.errors.ConfigIssue` at its location;
then each API without schema errors gets the checks a schema cannot express (paths, stage names
and variables, timeouts per API kind, handlers, URIs, duplicate and conflicting routes) and is
built. docs/configuration.md describes the format.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from server.access_format import compile_format
from server.config.authorizer_rules import TYPE_NAMES, check_authorizer, check_scopes, unknown_authorizer
from server.config.cache import route_cache, stage_cache
from server.config.cors import native_cors
from server.config.errors import Issues, loc
from server.config.gateway_responses import parse_gateway_response
from server.config.iam import parse_iam, parse_management, parse_resource_policy_at, parse_trusted_proxies
from server.config.model import (
    ApiConfig,
    ApiKeyConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    ClusterSettings,
    CorsConfig,
    GatewayConfig,
    GatewayResponseConfig,
    IntegrationConfig,
    IntegrationType,
    Isolation,
    MockResponse,
    PlanStage,
    QuotaSettings,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
    UsagePlanConfig,
    WebSocketSettings,
    frozen_map,
)
from server.config.route_keys import normalize as normalize_route_key
from server.config.rules import (
    DEFAULT_TIMEOUTS_MS,
    HTTP_API_NO_KEYS,
    METHODS,
    QUOTA_PERIODS,
    BuiltApi,
    BuiltKey,
    BuiltPlan,
    check_api_keys,
    check_gateway,
    check_method_throttles,
    check_path,
    check_quota,
    check_routes,
    check_selection_expression,
    check_stage_name,
    check_stage_variables,
    check_timeout,
    check_uri,
    function_name_from,
    scalar_text,
    split_handler,
)
from server.config.runtimes import runtime_api_handler, uses_runtime_api
from server.config.schema import schema_issues
from server.config.transform import TRANSFORM_KEYS, http_api_mapping, transform_fields
from server.config.validation import build_validation, check_model
from server.ids import new_api_id

__all__ = ["load_native"]

_KINDS = {"rest": ApiKind.REST, "http": ApiKind.HTTP, "websocket": ApiKind.WEBSOCKET}
_WEBSOCKET_KEYS = {
    "maxFrameBytes": "max_frame_bytes",
    "maxMessageBytes": "max_message_bytes",
    "binaryFrames": "binary_frames",
    "idleTimeout": "idle_timeout_s",
    "maxLifetime": "max_lifetime_s",
    "pingInterval": "ping_interval_s",
    "sendBufferBytes": "send_buffer_bytes",
    "maxInflight": "max_inflight",
    "floodRefusals": "flood_refusals",
    "floodWindow": "flood_window_s",
    "connectionThrottle": "connection_throttle",
    "controlFrameThrottle": "control_frame_throttle",
}
_CLUSTER_KEYS = {
    "heartbeat": "heartbeat_s",
    "nodeTtl": "node_ttl_s",
    "reaperInterval": "reaper_interval_s",
    "rpcTimeout": "rpc_timeout_s",
}
_ROUTE_ONLY = ("apiKeyRequired", "routeResponse", "authorizer", "authorizationScopes")
_SELECTORS = ("python", "lambda", "aws_proxy", "http_proxy", "http", "mock")
_FUNCTION_KEYS = {
    "function",
    "timeout",
    "isolation",
    "environment",
    "workers",
    "provisionedConcurrency",
    "reservedConcurrency",
    "memorySize",
    "payloadFormat",
    "runtime",
}
# Route settings that are not the integration's.
_ROUTE_KEYS = (
    *("apiKeyRequired", "routeResponse", "requestValidator", "requestParameters", "requestModels"),
    "modelSelectionExpression",
)
_APPLIES = {  # keys an integration of each type accepts (besides `type`)
    "python": {"handler", *_FUNCTION_KEYS},
    "lambda": {"function", "timeout", "payloadFormat", "region", "endpointUrl"},
    "aws_proxy": {"function", "timeout", "payloadFormat", "region", "endpointUrl"},
    "http_proxy": {"uri", "method", "timeout", "parameterMapping", "responseParameters"},
    "http": {"uri", "method", "timeout", *TRANSFORM_KEYS},
    "mock": {"status", "headers", "body", *TRANSFORM_KEYS},
}


def _texts(data: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(key): scalar_text(value) for key, value in (data or {}).items()}


def load_native(document: Any, *, source: Path, stage: str | None, issues: Issues) -> GatewayConfig:
    """Build the gateway definition; problems go to ``issues`` (the caller raises)."""
    bad_apis, bad_routes = schema_issues(document, issues)
    raw_apis = document.get("apis") if isinstance(document, dict) else None
    built: list[BuiltApi] = []
    for index, raw in enumerate(raw_apis if isinstance(raw_apis, list) else []):
        if index not in bad_apis:
            skip = {key for api, key in bad_routes if api == index}
            built.append(_api(raw, index, source.parent, skip, issues))
    all_stages = list(built)  # usage plans are checked against every stage, whatever --stage serves
    if stage is not None:
        built = [_only_stage(item, stage, issues) for item in built]
    check_gateway(built, issues)
    cluster = _cluster(document.get("cluster") if isinstance(document, dict) else None, issues)
    extra: dict[str, Any] = {}
    if isinstance(document, dict):
        if document.get("throttle") == "off":
            extra["account_throttle"] = None
        elif (account := _throttle(document.get("throttle"))) is not None:
            extra["account_throttle"] = account
        if document.get("throttleFailure") in ("open", "closed"):
            extra["throttle_failure"] = document["throttleFailure"]
        if document.get("rateLimitHeaders") is True:
            extra["rate_limit_headers"] = True
        if isinstance(aws := document.get("aws"), dict) and aws.get("endpointUrl"):
            extra["aws_endpoint_url"] = str(aws["endpointUrl"])
        declared_apis = {
            str(raw["name"])
            for raw in (raw_apis if isinstance(raw_apis, list) else [])
            if isinstance(raw, dict) and "name" in raw
        }
        raw_plans = document.get("usagePlans")
        plans = _usage_plans(
            raw_plans, {item.api.name: item.api for item in all_stages}, declared_apis, issues
        )
        keys = _api_keys(document.get("apiKeys"), issues)
        declared_plans = {str(plan_id) for plan_id in raw_plans} if isinstance(raw_plans, dict) else set()
        check_api_keys(plans, keys, [item.api for item in all_stages], declared_plans, issues)
        served = {(item.api.id, s.name) for item in built for s in item.api.stages}
        extra["usage_plans"] = tuple(_served_only(item.plan, served) for item in plans)
        extra["api_keys"] = tuple(item.key for item in keys)
        # Access control (docs/security.md): SigV4 keys, the management endpoints, proxies.
        extra["iam_credentials"] = parse_iam(document.get("iam"), "iam", issues)
        extra["management"] = parse_management(
            document.get("management"), "management", issues, has_keys=bool(extra["iam_credentials"])
        )
        extra["trusted_proxies"] = parse_trusted_proxies(
            document.get("trustedProxies"), "trustedProxies", issues
        )
    return GatewayConfig(
        apis=tuple(item.api for item in built),
        source=source,
        region=str(document.get("region", "us-east-1")) if isinstance(document, dict) else "us-east-1",
        account_id=str(document.get("accountId", "123456789012")) if isinstance(document, dict) else "",
        warnings=tuple(issues.warnings),
        cluster=cluster,
        **extra,
    )


def _throttle(raw: Any) -> ThrottleSettings | None:
    """``{rate, burst}`` (already checked by the schema: rate >= 0, burst an int >= 0)."""
    if not isinstance(raw, dict):
        return None
    rate, burst = raw.get("rate"), raw.get("burst")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate >= 0:
        return None
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        return None
    return ThrottleSettings(float(rate), burst)


def _throttle_key(key: str, kind: ApiKind) -> str:
    """A method-throttle key in the form of :attr:`RouteConfig.route_key` (both spellings)."""
    return normalize_route_key(key, websocket=kind is ApiKind.WEBSOCKET)


def _method_throttles(
    raw: Any, kind: ApiKind, where: str, issues: Issues
) -> tuple[dict[str, str], dict[str, ThrottleSettings]]:
    """``methodThrottles``: (route key -> location, route key -> settings); two spellings of
    one route are an error."""
    locations: dict[str, str] = {}
    settings: dict[str, ThrottleSettings] = {}
    for key, value in (raw if isinstance(raw, dict) else {}).items():
        route_key, location = _throttle_key(str(key), kind), loc(where, str(key))
        if route_key in locations:
            issues.error(location, f"names the same route as {locations[route_key]} ({route_key!r})")
            continue
        locations[route_key] = location
        if (throttle := _throttle(value)) is not None:
            settings[route_key] = throttle
    return locations, settings


def _quota(raw: Any, location: str, issues: Issues) -> QuotaSettings | None:
    """``{limit, period, offset}`` (types already checked by the schema)."""
    if not isinstance(raw, dict):
        return None
    limit, period, offset = raw.get("limit"), raw.get("period", "DAY"), raw.get("offset", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0 or period not in QUOTA_PERIODS:
        return None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return None
    quota = QuotaSettings(limit, period, offset)
    check_quota(quota, location, issues)
    return quota


def _usage_plans(
    raw: Any, apis: Mapping[str, ApiConfig], declared_apis: set[str], issues: Issues
) -> list[BuiltPlan]:
    """``usagePlans:`` (plan id -> plan). ``apis``: the built APIs by name, every stage kept;
    ``declared_apis``: every API name in the file (one left unbuilt already has errors)."""
    plans: list[BuiltPlan] = []
    for plan_id, body in (raw if isinstance(raw, dict) else {}).items():
        where = loc("usagePlans", str(plan_id))
        if not isinstance(body, dict):
            continue
        stages: list[PlanStage] = []
        locations: list[str] = []
        seen: dict[tuple[str, str], str] = {}
        entries = body.get("apis")
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            at = loc(loc(where, "apis"), index)
            if not isinstance(entry, dict):
                continue
            name, stage_name = entry.get("api"), entry.get("stage")
            if not isinstance(name, str) or not isinstance(stage_name, str):
                continue
            api = apis.get(name)
            if api is None:
                if name not in declared_apis:
                    listed = ", ".join(sorted(declared_apis)) or "none"
                    issues.error(loc(at, "api"), f"no API named {name!r} in this file (APIs: {listed})")
                continue
            if api.kind is ApiKind.HTTP:
                issues.error(loc(at, "api"), HTTP_API_NO_KEYS)
                continue
            if api.stage(stage_name) is None:
                listed = ", ".join(s.name for s in api.stages) or "none"
                issues.error(loc(at, "stage"), f"API {name!r} has no stage {stage_name!r} (stages: {listed})")
                continue
            if (api.id, stage_name) in seen:
                issues.error(
                    at,
                    f"stage {stage_name!r} of API {name!r} is already in this plan "
                    f"({seen[api.id, stage_name]})",
                )
                continue
            seen[api.id, stage_name] = at
            keys, methods = _method_throttles(
                entry.get("methodThrottles"), api.kind, loc(at, "methodThrottles"), issues
            )
            check_method_throttles(api.kind, keys, api.routes, issues)
            stages.append(PlanStage(api.id, stage_name, MappingProxyType(methods)))
            locations.append(at)
        plan = UsagePlanConfig(
            id=str(plan_id),
            name=str(body.get("name") or plan_id),
            stages=tuple(stages),
            throttle=_throttle(body.get("throttle")),
            quota=_quota(body.get("quota"), loc(where, "quota"), issues),
            description=str(body.get("description") or ""),
        )
        plans.append(BuiltPlan(plan, where, tuple(locations)))
    return plans


def _served_only(plan: UsagePlanConfig, served: set[tuple[str, str]]) -> UsagePlanConfig:
    """Without the stages ``--stage`` does not serve."""
    stages = tuple(entry for entry in plan.stages if (entry.api_id, entry.stage) in served)
    return plan if stages == plan.stages else dataclasses.replace(plan, stages=stages)


def _api_keys(raw: Any, issues: Issues) -> list[BuiltKey]:
    """``apiKeys:`` (a list; types already checked by the schema, the rest by check_api_keys)."""
    keys: list[BuiltKey] = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        where = loc("apiKeys", index)
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        value = item.get("value")
        enabled = item.get("enabled", True)
        plans = item.get("plans")
        named: dict[str, str] = {}  # plan id -> where it is first named
        for position, plan_id in enumerate(plans if isinstance(plans, list) else []):
            if isinstance(plan_id, str):
                named.setdefault(plan_id, loc(loc(where, "plans"), position))
        key = ApiKeyConfig(
            name=item["name"],
            value=value if isinstance(value, str) else None,
            enabled=enabled if isinstance(enabled, bool) else True,
            plans=tuple(named),
            description=str(item.get("description") or ""),
        )
        keys.append(BuiltKey(key, loc(where, "name"), loc(where, "value"), tuple(named.values())))
    return keys


def _cluster(raw: Any, issues: Issues) -> ClusterSettings:
    """The ``cluster:`` section (seconds). Values the schema rejected keep their defaults."""
    if not isinstance(raw, dict):
        return ClusterSettings()
    values = {
        _CLUSTER_KEYS[key]: float(value)
        for key, value in raw.items()
        if key in _CLUSTER_KEYS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and value > 0
    }
    cluster = ClusterSettings(**values)
    if len(values) == len(raw) and cluster.node_ttl_s <= cluster.heartbeat_s:
        issues.error(
            "cluster.nodeTtl",
            f"nodeTtl ({cluster.node_ttl_s:g} s) must be greater than heartbeat ({cluster.heartbeat_s:g} s): "
            "a live node would be taken for dead between two heartbeats",
        )
    return cluster


def _only_stage(built: BuiltApi, stage: str, issues: Issues) -> BuiltApi:
    kept = tuple(s for s in built.api.stages if s.name == stage)
    if not kept:
        names = ", ".join(s.name for s in built.api.stages)
        issues.error(loc(built.location, "stages"), f"no stage {stage!r} in API {built.api.name!r} ({names})")
        return built
    return dataclasses.replace(built, api=dataclasses.replace(built.api, stages=kept))


@dataclasses.dataclass(slots=True)
class _Context:
    kind: ApiKind
    code_dir: Path
    payload: str
    defaults: Mapping[str, Any]
    stage_refs: dict[str, str] = dataclasses.field(default_factory=dict)  # stage variable -> location
    # name -> authorizer (None: declared with errors, already reported); "aws_iam" added on use.
    authorizers: dict[str, AuthorizerConfig | None] = dataclasses.field(default_factory=dict)
    models: Mapping[str, Mapping[str, object]] = dataclasses.field(default_factory=dict)


def _api(raw: Mapping[str, Any], index: int, base_dir: Path, skip: set[str], issues: Issues) -> BuiltApi:
    location = loc("apis", index)
    kind = _KINDS[raw.get("type", "rest")]
    name = str(raw["name"])
    code_dir = (base_dir / raw.get("codeDir", ".")).resolve()
    if not code_dir.is_dir():
        issues.warn(loc(location, "codeDir"), f"folder {code_dir} does not exist")
    payload = _payload(raw.get("payloadFormat"), kind, loc(location, "payloadFormat"), issues)
    for key in ("routeSelectionExpression", "websocket"):
        if key in raw and kind is not ApiKind.WEBSOCKET:
            issues.error(loc(location, key), f"{key} applies to WebSocket APIs only")
    if kind is ApiKind.WEBSOCKET and "routeSelectionExpression" in raw:
        check_selection_expression(
            str(raw["routeSelectionExpression"]), loc(location, "routeSelectionExpression"), issues
        )
    limits: dict[str, Any] = {_WEBSOCKET_KEYS[k]: v for k, v in (raw.get("websocket") or {}).items()}
    if "flood_window_s" in limits:
        limits["flood_window_s"] = float(limits["flood_window_s"])
    if "connection_throttle" in limits:
        limits["connection_throttle"] = _throttle(limits["connection_throttle"])
    if "control_frame_throttle" in limits:
        limits["control_frame_throttle"] = _throttle(limits["control_frame_throttle"])
    websocket = WebSocketSettings(**limits)
    defaults = raw.get("defaults") or {}
    if "timeout" in defaults:
        check_timeout(defaults["timeout"], kind, loc(loc(location, "defaults"), "timeout"), issues)
    stages = _stages(raw.get("stages"), kind, loc(location, "stages"), issues)
    context = _Context(kind, code_dir, payload or ("2.0" if kind is ApiKind.HTTP else "1.0"), defaults)
    context.authorizers = _authorizers(raw.get("authorizers"), loc(location, "authorizers"), context, issues)
    api_key_source = str(raw.get("apiKeySource", "HEADER")).upper()
    if api_key_source == "AUTHORIZER" and kind is ApiKind.HTTP:
        issues.error(loc(location, "apiKeySource"), HTTP_API_NO_KEYS)
    context.models = _models(raw, kind, location, issues)
    located: list[tuple[RouteConfig, str]] = []
    for key, value in raw["routes"].items():
        if key in skip:
            continue
        route_location = loc(loc(location, "routes"), key)
        route = _route(key, value, route_location, context, issues)
        if route is not None:
            located.append((route, route_location))
    check_routes(kind, located, issues)
    raw_stages = raw.get("stages")
    if isinstance(raw_stages, dict):
        for stage_name, stage_body in raw_stages.items():
            where = loc(loc(loc(location, "stages"), str(stage_name)), "methodThrottles")
            keys, _ = _method_throttles((stage_body or {}).get("methodThrottles"), kind, where, issues)
            check_method_throttles(kind, keys, [route for route, _ in located], issues)
    for variable, where in context.stage_refs.items():
        for stage in stages:
            if variable not in stage.variables:
                issues.warn(where, f"stage {stage.name!r} has no variable {variable!r} (it renders empty)")
    api = ApiConfig(
        name=name,
        id=str(raw.get("id") or new_api_id(name)),
        kind=kind,
        stages=stages,
        routes=tuple(route for route, _ in located),
        base_path=str(raw.get("basePath", "")).strip("/"),
        binary_media_types=tuple(raw.get("binaryMediaTypes", ())),
        route_selection_expression=str(raw.get("routeSelectionExpression", "$request.body.action")),
        websocket=websocket,
        throttle_failure=raw["throttleFailure"] if raw.get("throttleFailure") in ("open", "closed") else None,
        resource_policy=_resource_policy(raw, kind, location, issues),
        api_key_source=api_key_source,
        gateway_responses=_gateway_responses(raw, kind, location, issues),
        models=MappingProxyType(dict(context.models)),
        cors=_cors(raw, kind, location, issues),
        access_log_format=_access_log_format(raw, location, issues),
    )
    return BuiltApi(api, location, tuple(where for _, where in located))


def _cors(raw: Mapping[str, Any], kind: ApiKind, location: str, issues: Issues) -> CorsConfig | None:
    if "cors" not in raw:
        return None
    if kind is not ApiKind.HTTP:
        # REST APIs answer preflights with an OPTIONS route (a mock), as on AWS.
        issues.error(loc(location, "cors"), "cors applies to HTTP APIs; REST APIs use an OPTIONS mock route")
        return None
    return native_cors(raw["cors"], loc(location, "cors"), issues)


def _models(
    raw: Mapping[str, Any], kind: ApiKind, location: str, issues: Issues
) -> dict[str, Mapping[str, object]]:
    models: dict[str, Mapping[str, object]] = {}
    if "models" not in raw:
        return models
    if kind is ApiKind.HTTP:
        issues.error(loc(location, "models"), "models apply to REST and WebSocket APIs")
        return models
    for name, schema in raw["models"].items():
        checked = check_model(schema, loc(loc(location, "models"), str(name)), issues)
        if checked is not None:
            models[str(name)] = checked
    return models


def _gateway_responses(
    raw: Mapping[str, Any], kind: ApiKind, location: str, issues: Issues
) -> Mapping[str, GatewayResponseConfig]:
    found: dict[str, GatewayResponseConfig] = {}
    if "gatewayResponses" not in raw:
        return MappingProxyType(found)
    where = loc(location, "gatewayResponses")
    if kind is not ApiKind.REST:
        issues.error(where, "gateway responses apply to REST APIs (as on AWS)")
        return MappingProxyType(found)
    for response_type, body in raw["gatewayResponses"].items():
        body = body or {}
        config = parse_gateway_response(
            response_type,
            body.get("statusCode"),
            body.get("responseParameters"),
            body.get("responseTemplates"),
            loc(where, str(response_type)),
            issues,
        )
        if config is not None:
            found[config.response_type] = config
    return MappingProxyType(found)


def _resource_policy(raw: Mapping[str, Any], kind: ApiKind, location: str, issues: Issues) -> Any:
    if "resourcePolicy" not in raw:
        return None
    where = loc(location, "resourcePolicy")
    if kind is ApiKind.WEBSOCKET:
        # $connect is authorized by the WebSocket adapter, which does not evaluate resource
        # policies: refuse rather than serve the API as if the policy held.
        issues.error(where, "resource policies apply to REST and HTTP APIs")
        return None
    return parse_resource_policy_at(raw["resourcePolicy"], where, issues)


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _payload(value: object, kind: ApiKind, location: str, issues: Issues) -> str | None:
    if value is None:
        return None
    text = f"{float(value):.1f}" if isinstance(value, int | float) else str(value)
    if kind is ApiKind.WEBSOCKET:
        issues.error(location, "payloadFormat applies to REST and HTTP APIs")
    elif kind is ApiKind.REST and text != "1.0":
        issues.error(location, "REST APIs send payload format 1.0 events")
    return text


def _stages(raw: Any, kind: ApiKind, location: str, issues: Issues) -> tuple[StageConfig, ...]:
    if raw is None:
        return (StageConfig("$default" if kind is ApiKind.HTTP else "dev"),)
    stages: list[StageConfig] = []
    entries = {str(name): {} for name in raw} if isinstance(raw, list) else raw
    for position, (name, body) in enumerate(entries.items()):
        where = loc(location, position) if isinstance(raw, list) else loc(location, name)
        variables = _texts((body or {}).get("variables"))
        check_stage_variables(variables, loc(where, "variables"), issues)
        if check_stage_name(name, kind, where, issues):
            _, methods = _method_throttles(
                (body or {}).get("methodThrottles"), kind, loc(where, "methodThrottles"), issues
            )
            stage = StageConfig(
                name,
                frozen_map(variables),
                throttle=_throttle((body or {}).get("throttle")),
                method_throttles=MappingProxyType(methods),
                cache=stage_cache((body or {}).get("cache"), kind, loc(where, "cache"), issues),
            )
            stages.append(stage)
    return tuple(stages)


def _route_key(
    key: str, kind: ApiKind, location: str, issues: Issues
) -> tuple[str, str, tuple[str, ...]] | None:
    if kind is ApiKind.WEBSOCKET:
        return "", key, ()
    if key == "$default":
        if kind is ApiKind.REST:
            issues.error(location, "the $default route exists only in HTTP APIs (REST: use ANY /{proxy+})")
            return None
        return "ANY", key, ()
    method, _, path = key.partition(" ")
    method, path = method.upper(), path.strip()
    if method not in METHODS:
        issues.error(location, f"method {method!r}: use one of {', '.join(METHODS)}")
        return None
    parameters = check_path(path, location, issues)
    return None if parameters is None else (method, path, parameters)


def _route(key: str, value: Any, location: str, context: _Context, issues: Issues) -> RouteConfig | None:
    parsed = _route_key(key, context.kind, location, issues)
    spec: Mapping[str, Any] = {"python": value} if isinstance(value, str) else value
    api_key = bool(spec.get("apiKeyRequired", False))
    route_response = bool(spec.get("routeResponse", False))
    authorizer, scopes, auth_ok = _route_authorizer(spec, key, location, context, issues)
    if "routeResponse" in spec and context.kind is not ApiKind.WEBSOCKET:
        issues.error(loc(location, "routeResponse"), "routeResponse applies to WebSocket routes only")
    if api_key and context.kind is ApiKind.HTTP:
        issues.error(loc(location, "apiKeyRequired"), "HTTP APIs have no API keys (use a REST API)")
    elif api_key and context.kind is ApiKind.WEBSOCKET and key != "$connect":
        issues.error(loc(location, "apiKeyRequired"), "WebSocket APIs check API keys on $connect only")
    if parsed is None:
        return None
    method, path, parameters = parsed
    integration = _integration(spec, isinstance(value, str), location, parameters, context, issues)
    validation = None
    if not isinstance(value, str) and any(key in spec for key in _ROUTE_KEYS[2:]):
        if context.kind is ApiKind.HTTP:
            issues.error(location, "request validators apply to REST APIs and WebSocket routes")
            return None
        if context.kind is ApiKind.WEBSOCKET and any(
            key in spec for key in ("requestValidator", "requestParameters")
        ):
            issues.error(location, "WebSocket routes validate their messages: use requestModels")
            return None
        if "modelSelectionExpression" in spec:
            if context.kind is not ApiKind.WEBSOCKET:
                issues.error(loc(location, "modelSelectionExpression"), "applies to WebSocket routes only")
                return None
            check_selection_expression(
                str(spec["modelSelectionExpression"]), loc(location, "modelSelectionExpression"), issues
            )
        required = [str(k) for k, v in (spec.get("requestParameters") or {}).items() if v]
        validation = build_validation(
            str(spec.get("requestValidator", "all")),
            required,
            spec.get("requestModels") or {},
            context.models,
            location,
            issues,
        )
        if validation is None:
            return None
        if "modelSelectionExpression" in spec:
            expression = str(spec["modelSelectionExpression"])
            validation = dataclasses.replace(validation, selection_expression=expression)
    cache = route_cache(spec.get("cache"), context.kind, parameters, loc(location, "cache"), issues)
    if integration is None or not auth_ok:
        return None
    return RouteConfig(
        method,
        path,
        integration,
        api_key,
        route_response,
        authorizer,
        scopes,
        validation=validation,
        cache=cache,
    )


def _route_authorizer(
    spec: Mapping[str, Any], key: str, location: str, context: _Context, issues: Issues
) -> tuple[AuthorizerConfig | None, tuple[str, ...], bool]:
    """A route's ``authorizer`` (a name from the API's ``authorizers``, or ``aws_iam``) and
    ``authorizationScopes``; the flag is False when the route must not be served."""
    name = spec.get("authorizer")
    scopes = tuple(str(scope) for scope in spec.get("authorizationScopes") or ())
    if name is None:
        check_scopes(None, scopes, loc(location, "authorizationScopes"), issues)
        return None, scopes, True
    where = loc(location, "authorizer")
    if context.kind is ApiKind.WEBSOCKET and key != "$connect":
        issues.error(where, "WebSocket APIs authorize on $connect only (it covers every later message)")
        return None, scopes, False
    name = str(name)
    if name.lower() == "aws_iam" and name not in context.authorizers:
        iam = AuthorizerConfig("aws_iam", AuthorizerType.AWS_IAM)
        if not check_authorizer(iam, context.kind, where, lambda key: loc(where, key), issues):
            return None, scopes, False
        found = context.authorizers.setdefault("aws_iam", iam)
    elif name in context.authorizers:
        found = context.authorizers[name]
    else:
        issues.error(where, unknown_authorizer(name, context.authorizers))
        return None, scopes, False
    if found is None:  # declared with errors (reported where it is declared)
        return None, scopes, False
    check_scopes(found, scopes, loc(location, "authorizationScopes"), issues)
    return found, scopes, True


def _strings(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return tuple(str(item) for item in raw)


def _authorizers(
    raw: Any, location: str, context: _Context, issues: Issues
) -> dict[str, AuthorizerConfig | None]:
    """The API's ``authorizers:`` map (types already checked by the schema)."""
    declared: dict[str, AuthorizerConfig | None] = {}
    for name, body in (raw if isinstance(raw, dict) else {}).items():
        where = loc(location, str(name))
        if not isinstance(body, dict):
            continue

        def field(key: str, where: str = where) -> str:
            return loc(where, key)

        auth_type = TYPE_NAMES[str(body["type"]).lower()]
        function: IntegrationConfig | None = None
        if "function" in body:
            raw_function = body["function"]
            spec = {"python": raw_function} if isinstance(raw_function, str) else raw_function
            function = _integration(
                spec, isinstance(raw_function, str), field("function"), (), context, issues
            )
            if function is None:
                declared[str(name)] = None
                continue
        sources = _strings(body.get("identitySource"))
        if auth_type is AuthorizerType.TOKEN and not sources:
            sources = ("method.request.header.Authorization",)  # AWS's default
        payload = body.get("payloadFormat")
        default_payload = "2.0" if context.kind is ApiKind.HTTP else "1.0"
        arns = _strings(body.get("userPoolArns")) or _strings(body.get("userPoolArn"))
        authorizer = AuthorizerConfig(
            name=str(name),
            type=auth_type,
            function=function,
            identity_sources=sources,
            identity_validation=body.get("identityValidationExpression"),
            ttl_s=int(body.get("resultTtlInSeconds", 300)),
            payload_format=default_payload if payload is None else f"{float(payload):.1f}",
            simple_responses=bool(body.get("simpleResponses", False)),
            issuer=body.get("issuer"),
            audiences=_strings(body.get("audience")),
            jwks_uri=body.get("jwksUri"),
            algorithms=_strings(body.get("algorithms")) or ("RS256",),
            user_pool_arns=arns,
        )
        ok = check_authorizer(authorizer, context.kind, where, field, issues)
        declared[str(name)] = authorizer if ok else None
    return declared


def _integration(
    spec: Mapping[str, Any],
    bare: bool,
    location: str,
    parameters: tuple[str, ...],
    context: _Context,
    issues: Issues,
) -> IntegrationConfig | None:
    if "integration" in spec:
        fields: Mapping[str, Any] = spec["integration"]
        kind = str(fields["type"]).lower()
        location = loc(location, "integration")
        options = {key: val for key, val in fields.items() if key != "type"}
        field_locations = {name: loc(location, name) for name in fields}
    else:
        kind = next(key for key in _SELECTORS if key in spec)
        target = location if bare else loc(location, kind)
        raw = spec[kind]
        fields = (
            raw
            if isinstance(raw, dict)
            else {{"python": "handler", "lambda": "function", "aws_proxy": "function"}.get(kind, "uri"): raw}
        )
        options = {
            key: val for key, val in spec.items() if key not in (kind, *_ROUTE_ONLY, *_ROUTE_KEYS, "cache")
        }
        field_locations = {name: loc(target, name) if isinstance(raw, dict) else target for name in fields}
    for option in options:
        if option not in _APPLIES[kind]:
            issues.error(loc(location, option), f"{option!r} does not apply to {kind} integrations")
    defaults = context.defaults
    timeout = int(options.get("timeout", defaults.get("timeout", DEFAULT_TIMEOUTS_MS[context.kind])))
    if "timeout" in options:
        check_timeout(timeout, context.kind, loc(location, "timeout"), issues)
    payload = _payload(options.get("payloadFormat"), context.kind, loc(location, "payloadFormat"), issues)
    payload = payload or context.payload
    if kind == "python":
        handler = str(fields["handler"])
        runtime = options.get("runtime")
        runtime = str(runtime) if runtime is not None else None
        if uses_runtime_api(runtime):  # served through the Lambda Runtime API, not imported
            relative = Path(handler)
            code_dir = (context.code_dir / relative.parent).resolve()
            checked = runtime_api_handler(runtime, relative.name, code_dir, location, issues)
            split = None if checked is None else (code_dir, checked)
        else:
            split = split_handler(handler, context.code_dir, field_locations["handler"], issues)
        if split is None:
            return None
        environment = {**_texts(defaults.get("environment")), **_texts(options.get("environment"))}
        return IntegrationConfig(
            type=IntegrationType.PYTHON,
            timeout_ms=timeout,
            handler=split[1],
            code_dir=split[0],
            function_name=str(options.get("function") or function_name_from(handler)),
            environment=frozen_map(environment),
            isolation=Isolation(options.get("isolation", defaults.get("isolation", "process"))),
            workers=int(options.get("workers", defaults.get("workers", 1))),
            payload_format=payload,
            memory_mb=int(options.get("memorySize", defaults.get("memorySize", 1024))),
            prestart=int(options.get("provisionedConcurrency", defaults.get("provisionedConcurrency", 0))),
            reserved_concurrency=_optional_int(
                options.get("reservedConcurrency", defaults.get("reservedConcurrency"))
            ),
            runtime=runtime,
        )
    if kind in ("lambda", "aws_proxy"):
        function = str(fields["function"])
        if context.kind is ApiKind.WEBSOCKET:  # connections/integration.py cannot build it yet
            issues.error(
                field_locations["function"],
                "real Lambda functions (lambda, aws_proxy) are not available on WebSocket routes yet; "
                "run the code locally with `python: module.function`",
            )
            return None
        settings = {**fields, **options}
        region, endpoint = settings.get("region"), settings.get("endpointUrl")
        return IntegrationConfig(
            IntegrationType.AWS_PROXY,
            timeout,
            function_name=function.split(":function:")[-1].split(":")[0],
            uri=function,
            payload_format=payload,
            aws_region=str(region) if region else None,
            aws_endpoint_url=str(endpoint) if endpoint else None,
        )
    if kind in ("http", "http_proxy"):
        uri = str(fields["uri"])
        for variable in check_uri(uri, parameters, field_locations["uri"], issues):
            context.stage_refs.setdefault(variable, field_locations["uri"])
        mapping = {}
        if kind == "http_proxy":
            mapping = http_api_mapping({**fields, **options}, context.kind, location, issues)
        return IntegrationConfig(
            IntegrationType.HTTP_PROXY if kind == "http_proxy" else IntegrationType.HTTP,
            timeout,
            uri=uri,
            http_method=str(fields.get("method", "ANY")).upper(),
            **(transform_fields({**fields, **options}, location, issues) if kind == "http" else mapping),
        )
    body = fields.get("body")
    text = body if isinstance(body, str) else "" if body is None else json.dumps(body, separators=(",", ":"))
    mock = MockResponse(int(fields.get("status", 200)), frozen_map(_texts(fields.get("headers"))), text)
    extra = transform_fields({**fields, **options}, location, issues)
    return IntegrationConfig(IntegrationType.MOCK, timeout, mock=mock, **extra)


def _access_log_format(raw: Mapping[str, Any], location: str, issues: Issues) -> str | None:
    """``accessLog.format``, checked as AWS checks it (compiled again by the app)."""
    body = raw.get("accessLog")
    if not isinstance(body, dict) or not isinstance(body.get("format"), str):
        return None
    try:
        compile_format(body["format"])
    except ValueError as error:
        issues.error(loc(loc(location, "accessLog"), "format"), str(error))
        return None
    return str(body["format"])

"""Serverless Framework v3 ``serverless.yml`` -> :class:`~server.config.model.GatewayConfig`.

What AWS would deploy, and what serverless-offline serves from the same file:

* ``http`` events -> one REST API named after the service, on the stage ``--stage`` /
  ``provider.stage`` / ``dev`` (URL ``/{stage}/{path}``); ``private: true`` -> API key required;
  ``cors`` -> an ``OPTIONS`` MOCK route answering the preflight, as serverless deploys it.
* ``httpApi`` events -> one HTTP API on the ``$default`` stage (no stage segment); ``'*'`` is the
  ``$default`` route; payload format from ``provider.httpApi.payload`` (default ``2.0``).
* ``websocket`` events -> one WebSocket API named ``provider.websocketsApiName`` (default
  ``{stage}-{service}-websockets``, as serverless names it) on the same stage (URL
  ``ws://host:port/{stage}``); route selection from ``provider.websocketsApiRouteSelectionExpression``
  (default ``$request.body.action``); ``routeResponseSelectionExpression: $default`` -> a two-way route.
* ``provider.apiGateway.apiKeys`` / ``usagePlan`` -> API keys and usage plans of the REST API's
  stage, in serverless's two forms: one plan (``usagePlan: {quota, throttle}``, or none at all:
  a plan without limits) named ``{service}-{stage}`` that every key belongs to, or named plans
  (``usagePlan: [{free: {...}}]``, ids ``{service}-{name}-{stage}``) with the keys listed under
  each plan's name (``apiKeys: [{free: [myKey]}]``).
* ``custom.apiGatewayThrottling`` and the ``throttling`` of ``http``/``httpApi`` events (the
  serverless-api-gateway-throttling plugin) -> the stage default and method throttles.
* Functions run as Python handlers: ``handler: path/module.function`` is the module
  ``path.module`` imported from the service root as on Lambda (code, requirements and layers:
  :mod:`server.config.serverless_code`), named ``{service}-{stage}-{function}`` (or ``name:``);
  environment = ``provider.environment`` overlaid with the function's; integration timeout =
  the function timeout (default 6 s) capped at 29 s (REST, WebSocket) or 30 s (HTTP API).

Unknown keys and plugins are ignored; other event types and settings Portway cannot honour
(CloudFormation values) become warnings; authorizers and resource policies that cannot be enforced are
errors (a route is never served open when its definition asks for authentication).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from server.auth.resource_policy import ResourcePolicy
from server.config.cloudformation import function_logical_id
from server.config.cors import serverless_http_cors
from server.config.errors import Issues, did_you_mean, loc, loc_path
from server.config.gateway_responses import serverless_gateway_responses
from server.config.iam import parse_iam, parse_management, parse_resource_policy_at, parse_trusted_proxies
from server.config.model import (
    DEFAULT_STAGE,
    ApiConfig,
    ApiKeyConfig,
    ApiKind,
    GatewayConfig,
    PlanStage,
    QuotaSettings,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
    UsagePlanConfig,
)
from server.config.rules import (
    PLAN_ID_RULE,
    QUOTA_PERIODS,
    BuiltApi,
    BuiltKey,
    BuiltPlan,
    check_api_keys,
    check_gateway,
    check_quota,
    check_routes,
    check_selection_expression,
    check_stage_name,
    lambda_handler,
    scalar_text,
    valid_plan_id,
)
from server.config.runtimes import runtime_api_handler, uses_runtime_api
from server.config.serverless_cache import CACHING_PLUGIN, plugin_cache
from server.config.serverless_code import check_requirements_plugin, function_code
from server.config.serverless_events import (
    AWS_DEFAULT_THROTTLE,
    THROTTLING_PLUGIN,
    Build,
    Function,
    Parts,
    add_events,
    cors_routes,
    plugin_throttle,
)
from server.config.serverless_logs import with_access_log
from server.config.serverless_wsgi import WSGI_HANDLERS, wsgi_environment
from server.config.validation import serverless_models
from server.config.variables import Resolver
from server.ids import new_api_id

__all__ = ["load_serverless"]

DEFAULT_FUNCTION_TIMEOUT_S = 6  # serverless v3's default Lambda timeout
DEFAULT_MEMORY_MB = 1024
_OFFLINE_OPTIONS = {"host", "httpPort", "lambdaPort", "noPrependStageInUrl", "prefix", "websocketPort"}
_API_GATEWAY: Parts = ("provider", "apiGateway")
_EXECUTE_API = re.compile(r"^(?:https|wss)://([a-z0-9]+)\.execute-api\.")
_PORTWAY: Parts = ("custom", "portway")
_KEY_FIELDS = ("name", "value", "description", "customerId", "enabled")


def load_serverless(
    document: Mapping[str, Any], *, source: Path, stage: str | None, env: Mapping[str, str], issues: Issues
) -> GatewayConfig:
    """Build the gateway definition; problems go to ``issues`` (the caller raises)."""
    r = Resolver(
        document, base_dir=source.parent, options={"stage": stage} if stage else {}, env=env, issues=issues
    )
    service = r.get("service", "name") if isinstance(r.get("service"), dict) else r.get("service")
    if not isinstance(service, str) or not service:
        if "service" not in r.failed:
            issues.error("service", "the service name must be a non-empty string")
        service = "service"
    check_stage_name(r.stage, ApiKind.REST, "provider.stage", issues)
    entries = _function_entries(r, issues)
    # What `Ref`/`Fn::GetAtt` of the functions and APIs give (read before any CloudFormation value).
    names = _api_names(r, service)
    r.apis.update({logical: new_api_id(name) for logical, name in names.items()})
    for parts, name in entries:
        function_name = r.get(*parts, "name")
        if not isinstance(function_name, str) or not function_name:
            function_name = f"{service}-{r.stage}-{name}"
        r.functions[function_logical_id(name)] = function_name
    payload = scalar_text(r.get("provider", "httpApi", "payload") or "2.0")
    payload = {"1": "1.0", "2": "2.0"}.get(payload, payload)
    if payload not in ("1.0", "2.0"):
        issues.error("provider.httpApi.payload", f"payload {payload!r}: use '1.0' or '2.0'")
    offline = r.get("custom", "serverless-offline")
    ignored = sorted(set(offline) & _OFFLINE_OPTIONS) if isinstance(offline, dict) else []
    if ignored:
        issues.warn(
            "custom.serverless-offline",
            f"{', '.join(ignored)} not used: Portway takes --host/--port and serves REST APIs under "
            "/{stage}/, as AWS does",
        )
    stage_throttle = plugin_throttle(r, ("custom", "apiGatewayThrottling"), AWS_DEFAULT_THROTTLE, issues)
    build = Build(r, issues, source.parent, payload, stage_throttle)
    build.models = serverless_models(r, issues)
    defaults = Function(
        source.parent,
        "",
        "",
        _environment(r, ("provider", "environment"), issues),
        _number(r, ("provider", "timeout"), issues) or DEFAULT_FUNCTION_TIMEOUT_S,
        int(_number(r, ("provider", "memorySize"), issues) or DEFAULT_MEMORY_MB),
    )
    check_requirements_plugin(r, source.parent, issues)
    parts_of = {name: parts for parts, name in entries}
    functions: dict[str, Function | None] = {}

    def function_named(name: str) -> Function | None:
        # Read once, when first needed: by its own events or by an authorizer naming it.
        if name not in functions:
            parts = parts_of.get(name)
            functions[name] = (
                None if parts is None else _function(build, parts, f"{service}-{r.stage}-{name}", defaults)
            )
        return functions[name]

    build.function_named = function_named
    build.function_keys = tuple(parts_of)
    for parts, name in entries:
        function = function_named(name)
        if function is not None:
            add_events(build, parts, function)
    apis: list[BuiltApi] = []
    if build.rest:
        build.rest.extend(cors_routes(build))
        binary = r.get_deep("provider", "apiGateway", "binaryMediaTypes") or []
        name = names["ApiGatewayRestApi"]
        rest_stage = StageConfig(
            r.stage,
            throttle=stage_throttle,
            method_throttles=_frozen(build.rest_throttles),
            cache=plugin_cache(r, issues),
        )
        if rest_stage.cache is None and any(route.cache and route.cache.enabled for route, _ in build.rest):
            issues.warn(
                loc_path(CACHING_PLUGIN),
                "events have caching enabled but custom.apiGatewayCaching.enabled is not true: not cached",
            )
        built_rest = _api(
            name, new_api_id(name), ApiKind.REST, rest_stage, build.rest, tuple(map(str, binary))
        )
        policy = _resource_policy(r, issues)
        if policy is not None:
            built_rest = dataclasses.replace(
                built_rest, api=dataclasses.replace(built_rest.api, resource_policy=policy)
            )
        responses = serverless_gateway_responses(r, issues)
        if responses or build.models:
            api = dataclasses.replace(
                built_rest.api,
                gateway_responses=MappingProxyType(responses),
                models=MappingProxyType(build.models),
            )
            built_rest = dataclasses.replace(built_rest, api=api)
        built_rest = with_access_log(r, built_rest, "restApi", issues)
        apis.append(_with_key_source(r, built_rest, issues))
    elif _resource_policy(r, issues) is not None:
        issues.error(
            loc_path((*_API_GATEWAY, "resourcePolicy")),
            "a resource policy applies to the REST API of `http` events, and there is none",
        )
    if build.http:
        name = names["HttpApi"]
        http_stage = StageConfig(
            DEFAULT_STAGE, throttle=stage_throttle, method_throttles=_frozen(build.http_throttles)
        )
        built_http = _api(name, new_api_id(name), ApiKind.HTTP, http_stage, build.http, ())
        built_http = with_access_log(r, built_http, "httpApi", issues)
        cors = serverless_http_cors(
            r.get_deep("provider", "httpApi", "cors"), built_http.api.routes, "provider.httpApi.cors", issues
        )
        if cors is not None:
            built_http = dataclasses.replace(built_http, api=dataclasses.replace(built_http.api, cors=cors))
        apis.append(built_http)
    if build.websocket:
        apis.append(_websocket_api(r, service, build.websocket, issues))
    if not apis:
        issues.warn("functions", "no http, httpApi or websocket events: nothing to serve")
    for built in apis:
        check_routes(built.api.kind, list(zip(built.api.routes, built.route_locations, strict=True)), issues)
    check_gateway(apis, issues)
    if build.throttling_at or stage_throttle is not None:
        _check_throttling_plugin(r, build.throttling_at or "custom.apiGatewayThrottling", issues)
    rest = next((built.api for built in apis if built.api.kind is ApiKind.REST), None)
    plans, keys, declared = _usage_plans(r, service, rest, issues)
    check_api_keys(plans, keys, [b.api for b in apis], declared, issues, key_required="private: true")
    region = r.get("provider", "region")
    # Access control (docs/security.md), same shapes as the native format's top-level keys.
    credentials = parse_iam(r.get_deep(*_PORTWAY, "iam"), "custom.portway.iam", issues)
    management = parse_management(
        r.get_deep(*_PORTWAY, "management"), "custom.portway.management", issues, has_keys=bool(credentials)
    )
    proxies = parse_trusted_proxies(
        r.get_deep(*_PORTWAY, "trustedProxies"), "custom.portway.trustedProxies", issues
    )
    return GatewayConfig(
        apis=tuple(built.api for built in apis),
        source=source,
        region=str(region) if region else "us-east-1",
        warnings=tuple(issues.warnings),
        usage_plans=tuple(built.plan for built in plans),
        api_keys=tuple(built.key for built in keys),
        iam_credentials=credentials,
        management=management,
        trusted_proxies=proxies,
        reload_handler=isinstance(offline, dict) and offline.get("reloadHandler") is True,
    )


def _api_names(r: Resolver, service: str) -> dict[str, str]:
    """The names of the REST, HTTP and WebSocket APIs, by serverless's logical ids (their ids derive
    from them)."""
    websocket = r.get("provider", "websocketsApiName")
    return {
        "ApiGatewayRestApi": str(r.get("provider", "apiName") or service),
        "HttpApi": str(r.get("provider", "httpApi", "name") or f"{service}-httpApi"),
        "WebsocketsApi": websocket
        if isinstance(websocket, str) and websocket
        else f"{r.stage}-{service}-websockets",
    }


def _resource_policy(r: Resolver, issues: Issues) -> ResourcePolicy | None:
    """``provider.apiGateway.resourcePolicy`` (or the older ``provider.resourcePolicy``): a list of
    statements for the REST API."""
    for where in ((*_API_GATEWAY, "resourcePolicy"), ("provider", "resourcePolicy")):
        raw = r.get_deep(*where)
        if raw not in (None, [], {}):
            return parse_resource_policy_at(raw, loc_path(where), issues)
    return None


def _frozen(throttles: Mapping[str, ThrottleSettings]) -> Mapping[str, ThrottleSettings]:
    return MappingProxyType(dict(throttles))


def _check_throttling_plugin(r: Resolver, location: str, issues: Issues) -> None:
    plugins = r.get_deep("plugins")
    if isinstance(plugins, dict):  # plugins: {localPath: ..., modules: [...]}
        plugins = plugins.get("modules")
    if not (isinstance(plugins, list) and THROTTLING_PLUGIN in plugins):
        issues.warn(
            location,
            f"throttling settings belong to the {THROTTLING_PLUGIN} plugin, which is not in `plugins`: "
            "AWS would not apply them (Portway does)",
        )


def _usage_plans(
    r: Resolver, service: str, rest: ApiConfig | None, issues: Issues
) -> tuple[list[BuiltPlan], list[BuiltKey], set[str]]:
    """``provider.apiGateway.usagePlan`` and ``apiKeys`` (serverless's two forms, see the module
    docstring): the plans, the keys, and the ids of every plan declared."""
    raw_plan, raw_keys = r.get(*_API_GATEWAY, "usagePlan"), r.get(*_API_GATEWAY, "apiKeys")
    if raw_plan is None and raw_keys is None:
        return [], [], set()
    if rest is None:
        issues.warn(
            loc_path(_API_GATEWAY),
            "usagePlan and apiKeys apply to the REST API of `http` events, and there is none (ignored)",
        )
        return [], [], set()
    stages = (PlanStage(rest.id, r.stage),)
    plans: list[BuiltPlan] = []
    named: dict[str, str] = {}  # form 2: plan name -> plan id
    if isinstance(raw_plan, list):
        for index in range(len(raw_plan)):
            parts = (*_API_GATEWAY, "usagePlan", index)
            item = r.get(*parts)
            if not isinstance(item, dict) or len(item) != 1:
                issues.error(loc_path(parts), "a usage plan of the list is `- name: {quota, throttle}`")
                continue
            name = str(next(iter(item)))
            plan_id, where = f"{service}-{name}-{r.stage}", loc_path((*parts, name))
            if name in named:
                issues.error(where, f"usage plan {name!r} is defined twice")
                continue
            if not valid_plan_id(plan_id):
                issues.error(where, f"usage plan {name!r} makes the plan id {plan_id!r}: {PLAN_ID_RULE}")
                continue
            named[name] = plan_id
            throttle, quota = _plan_limits(r, (*parts, name), issues)
            description = f'Usage plan "{name}" for {service} {r.stage} stage'
            plan = UsagePlanConfig(plan_id, plan_id, stages, throttle, quota, description)
            plans.append(BuiltPlan(plan, where, (where,)))
        declared = set(named.values())
    else:
        plan_id = f"{service}-{r.stage}"
        where = loc_path((*_API_GATEWAY, "usagePlan" if raw_plan is not None else "apiKeys"))
        throttle = quota = None
        if isinstance(raw_plan, dict):
            throttle, quota = _plan_limits(r, (*_API_GATEWAY, "usagePlan"), issues)
        elif raw_plan is not None:
            issues.error(where, "usagePlan is {quota, throttle}, or a list of `- name: {quota, throttle}`")
        description = f"Usage plan for {service} {r.stage} stage"
        plans.append(
            BuiltPlan(
                UsagePlanConfig(plan_id, plan_id, stages, throttle, quota, description), where, (where,)
            )
        )
        declared = {plan_id}
        if not valid_plan_id(plan_id):
            issues.error("service", f"the usage plan id {plan_id!r} ({{service}}-{{stage}}): {PLAN_ID_RULE}")
    return plans, _api_keys(r, service, raw_keys, named, plan_id, issues), declared


def _api_keys(
    r: Resolver, service: str, raw: Any, named: dict[str, str], default_plan: str, issues: Issues
) -> list[BuiltKey]:
    """``apiKeys``: names and ``{name, value, ...}`` (form 1), or ``- plan: [keys]`` (form 2).
    A key without a name gets the one CloudFormation would derive from its logical id."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        issues.error(loc_path((*_API_GATEWAY, "apiKeys")), "apiKeys must be a list")
        return []
    stack = f"{service}-{r.stage}"
    keys: list[BuiltKey] = []
    number = 0
    for index in range(len(raw)):
        parts = (*_API_GATEWAY, "apiKeys", index)
        item = r.get(*parts)
        group = next(iter(item)) if isinstance(item, dict) and len(item) == 1 else None
        if group is not None and isinstance(r.get(*parts, group), list):
            where = loc_path((*parts, group))
            if group not in named:
                plans = f"plans: {', '.join(named)}" if named else "usagePlan is not a list of named plans"
                issues.error(where, f"API key group {group!r} has no usage plan defined ({plans})")
                continue
            for position in range(len(r.get(*parts, group))):
                logical = f"ApiGatewayApiKey{str(group)[:1].upper()}{str(group)[1:]}{position + 1}"
                key = _api_key(r, (*parts, group, position), f"{stack}-{logical}", named[group], issues)
                keys.extend(key)
            continue
        if named:
            issues.error(
                loc_path(parts),
                "with several usage plans, list each key under its plan's name: `- free: [myKey]`",
            )
            continue
        number += 1
        keys.extend(_api_key(r, parts, f"{stack}-ApiGatewayApiKey{number}", default_plan, issues))
    return keys


def _api_key(r: Resolver, parts: Parts, default_name: str, plan_id: str, issues: Issues) -> list[BuiltKey]:
    """One key: a name, or ``{name, value, description, customerId, enabled}`` (none or one)."""
    raw, where = r.get(*parts), loc_path(parts)
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        return [BuiltKey(ApiKeyConfig(scalar_text(raw), plans=(plan_id,)), where, where, (where,))]
    if not isinstance(raw, dict):
        if where not in r.failed:
            issues.error(where, "an API key is a name or {name, value, description, customerId, enabled}")
        return []
    valid = True
    for field in raw:
        if field not in _KEY_FIELDS:
            issues.error(loc(where, str(field)), f"unknown key {field!r} (use {', '.join(_KEY_FIELDS)})")
            valid = False
    values: dict[str, Any] = {field: r.get(*parts, field) for field in _KEY_FIELDS}
    for field in ("name", "value", "description"):
        if values[field] is not None and not isinstance(values[field], str):
            issues.error(loc(where, field), f"{field} must be a string")
            valid = False
    if values["enabled"] is not None and not isinstance(values["enabled"], bool):
        issues.error(loc(where, "enabled"), "enabled must be true or false")
        valid = False
    if not valid or any(loc(where, field) in r.failed for field in ("name", "value")):
        return []
    key = ApiKeyConfig(
        name=values["name"] if values["name"] is not None else default_name,
        value=values["value"],
        enabled=values["enabled"] is not False,
        plans=(plan_id,),
        description=values["description"] or "",
    )
    name_at = loc(where, "name") if "name" in raw else where
    return [BuiltKey(key, name_at, loc(where, "value"), (where,))]


def _plan_limits(
    r: Resolver, parts: Parts, issues: Issues
) -> tuple[ThrottleSettings | None, QuotaSettings | None]:
    """A plan's ``{quota: {limit, offset, period}, throttle: {burstLimit, rateLimit}}``."""
    body, where = r.get(*parts), loc_path(parts)
    if not isinstance(body, dict):
        if body is not None:
            issues.error(where, "a usage plan is {quota: {...}, throttle: {...}}")
        return None, None
    for field in body:
        if field not in ("quota", "throttle"):
            issues.error(
                loc(where, str(field)), f"unknown key {field!r} (a usage plan has quota and throttle)"
            )
    quota = throttle = None
    fields = _fields(r, (*parts, "quota"), ("limit", "offset", "period"), ("limit",), issues)
    if fields is not None:
        limit, offset, period = fields["limit"], fields.get("offset", 0), fields.get("period", "DAY")
        at = loc(where, "quota")
        valid = _count(limit, loc(at, "limit"), issues) and _count(offset, loc(at, "offset"), issues)
        if period not in QUOTA_PERIODS:
            issues.error(loc(at, "period"), f"period {period!r}: use DAY, WEEK or MONTH")
            valid = False
        if valid:
            quota = QuotaSettings(limit, period, offset)
            check_quota(quota, at, issues)
    fields = _fields(
        r, (*parts, "throttle"), ("burstLimit", "rateLimit"), ("burstLimit", "rateLimit"), issues
    )
    if fields is not None:
        rate, burst, at = fields["rateLimit"], fields["burstLimit"], loc(where, "throttle")
        valid = _count(burst, loc(at, "burstLimit"), issues)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
            issues.error(loc(at, "rateLimit"), f"{rate!r} is not a number >= 0")
            valid = False
        if valid:
            throttle = ThrottleSettings(float(rate), burst)
    return throttle, quota


def _fields(
    r: Resolver, parts: Parts, names: tuple[str, ...], required: tuple[str, ...], issues: Issues
) -> dict[str, Any] | None:
    """The values of ``names`` in the mapping at ``parts`` (other keys are reported); None if
    absent, not a mapping, or missing a ``required`` one."""
    raw, where = r.get(*parts), loc_path(parts)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        issues.error(where, f"expected a mapping of {', '.join(names)}")
        return None
    for field in raw:
        if field not in names:
            issues.error(loc(where, str(field)), f"unknown key {field!r} (use {', '.join(names)})")
    missing = [field for field in required if field not in raw]
    for field in missing:
        issues.error(where, f"missing {field}")
    return None if missing else {field: r.get(*parts, field) for field in names if field in raw}


def _count(value: Any, location: str, issues: Issues) -> bool:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        issues.error(location, f"{value!r} is not an integer >= 0")
        return False
    return True


def _with_key_source(r: Resolver, built: BuiltApi, issues: Issues) -> BuiltApi:
    """``provider.apiGateway.apiKeySourceType``: HEADER (default) or AUTHORIZER."""
    where = (*_API_GATEWAY, "apiKeySourceType")
    source = r.get(*where)
    if source is None:
        return built
    if str(source).upper() not in ("HEADER", "AUTHORIZER"):
        issues.error(loc_path(where), f"{source!r}: use HEADER or AUTHORIZER")
        return built
    api = dataclasses.replace(built.api, api_key_source=str(source).upper())
    return dataclasses.replace(built, api=api)


def _api(
    name: str,
    api_id: str,
    kind: ApiKind,
    stage: StageConfig,
    routes: list[tuple[RouteConfig, str]],
    binary: tuple[str, ...],
) -> BuiltApi:
    api = ApiConfig(
        name=name,
        id=api_id,
        kind=kind,
        stages=(stage,),
        routes=tuple(route for route, _ in routes),
        binary_media_types=binary,
    )
    return BuiltApi(
        api, "provider" if kind is ApiKind.REST else "provider.httpApi", tuple(w for _, w in routes)
    )


def _websocket_api(
    r: Resolver, service: str, routes: list[tuple[RouteConfig, str]], issues: Issues
) -> BuiltApi:
    name = r.get("provider", "websocketsApiName")
    if name is not None and not (isinstance(name, str) and name):
        issues.error("provider.websocketsApiName", "must be a non-empty string")
        name = None
    name = name or f"{r.stage}-{service}-websockets"
    expression = r.get("provider", "websocketsApiRouteSelectionExpression")
    if expression is None:
        expression = "$request.body.action"
    elif not isinstance(expression, str) or not expression:
        issues.error("provider.websocketsApiRouteSelectionExpression", "must be a non-empty string")
        expression = "$request.body.action"
    else:
        check_selection_expression(expression, "provider.websocketsApiRouteSelectionExpression", issues)
    api = ApiConfig(
        name=name,
        id=new_api_id(name),
        kind=ApiKind.WEBSOCKET,
        stages=(StageConfig(r.stage),),
        routes=tuple(route for route, _ in routes),
        route_selection_expression=expression,
    )
    return BuiltApi(api, "provider.websocketsApiName", tuple(w for _, w in routes))


def _number(r: Resolver, parts: Parts, issues: Issues) -> float | None:
    value = r.get(*parts)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        issues.error(loc_path(parts), f"{value!r} is not a positive number")
        return None
    return value


def _whole_count(r: Resolver, parts: Parts, issues: Issues) -> int | None:
    """A whole number >= 0 (``reservedConcurrency: 0`` is how Lambda turns a function off)."""
    value = r.get(*parts)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        issues.error(loc_path(parts), f"{value!r} is not a whole number >= 0")
        return None
    return value


def _environment(r: Resolver, parts: Parts, issues: Issues) -> dict[str, str]:
    values = r.get_deep(*parts)
    if values is None:
        return {}
    if not isinstance(values, dict):
        issues.error(loc_path(parts), "environment must be a mapping of NAME: value")
        return {}
    environment: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, dict | list):
            issues.warn(
                loc_path((*parts, str(name))), "CloudFormation values cannot be resolved locally (left out)"
            )
        elif value is not None:
            environment[str(name)] = scalar_text(value)
            _check_aws_endpoint(r, (*parts, str(name)), environment[str(name)], issues)
    return environment


def _check_aws_endpoint(r: Resolver, parts: Parts, value: str, issues: Issues) -> None:
    """``!Join ['', ['https://', !Ref WebsocketsApi, '.execute-api.', ...]]`` resolves to what AWS
    would hold: its endpoint, not Portway's. Say so rather than let handlers call AWS unnoticed."""
    match = _EXECUTE_API.match(value)
    if match and match.group(1) in r.apis.values():
        issues.warn(
            loc_path(parts),
            f"{value!r} is this API's endpoint on AWS: a handler calling it reaches AWS, not Portway "
            "(build the URL from the event's requestContext.domainName and stage instead)",
        )


def _function_entries(r: Resolver, issues: Issues) -> list[tuple[Parts, str]]:
    functions = r.get("functions")
    if functions is None:
        return []
    if isinstance(functions, dict):
        return [(("functions", str(name)), str(name)) for name in functions]
    if isinstance(functions, list):  # `functions: [{a: ...}, {b: ...}]`
        items = [(index, r.get("functions", index)) for index in range(len(functions))]
        return [
            (("functions", i, str(name)), str(name))
            for i, item in items
            if isinstance(item, dict)
            for name in item
        ]
    issues.error("functions", "functions must be a mapping of name: {handler, events}")
    return []


def _function(build: Build, parts: Parts, default_name: str, defaults: Function) -> Function | None:
    r, issues, location = build.r, build.issues, loc_path(parts)
    handler = r.get(*parts, "handler")
    if not isinstance(handler, str):
        if r.get(*parts, "image") is not None:
            issues.warn(location, "container image functions are not supported (ignored)")
        elif loc(location, "handler") not in r.failed:
            body = r.get(*parts)
            close = did_you_mean("handler", [str(key) for key in body]) if isinstance(body, dict) else None
            hint = f" ({close!r} is not a function setting: did you mean 'handler'?)" if close else ""
            issues.error(loc(location, "handler"), f"missing handler (path/module.function){hint}")
        return None
    code = function_code(r, parts, build.base_dir, issues)
    wsgi = wsgi_environment(r, handler, code.task_root, loc(location, "handler"), issues)  # serverless-wsgi
    if uses_runtime_api(code.runtime):  # served through the Lambda Runtime API, not imported
        module_handler = runtime_api_handler(code.runtime, handler, code.task_root, location, issues)
    elif wsgi is None:
        module_handler = lambda_handler(handler, code.task_root, loc(location, "handler"), issues)
    else:
        module_handler = WSGI_HANDLERS[0]  # served by Portway's adapter around custom.wsgi.app
    if (
        code.runtime is not None
        and not code.runtime.startswith("python")
        and not uses_runtime_api(code.runtime)
    ):
        issues.warn(location, f"runtime {code.runtime!r}: Portway runs Python, provided.* and nodejs* only")
    if module_handler is None:
        return None
    return Function(
        code_dir=code.task_root,
        handler=module_handler,
        name=str(r.get(*parts, "name") or default_name),
        environment={
            **defaults.environment,
            **_environment(r, (*parts, "environment"), issues),
            **(wsgi or {}),
        },
        timeout_s=_number(r, (*parts, "timeout"), issues) or defaults.timeout_s,
        memory_mb=int(_number(r, (*parts, "memorySize"), issues) or defaults.memory_mb),
        runtime=code.runtime,
        layers=code.layers,
        requirements=code.requirements,
        # Provisioned concurrency = warm sandboxes before the first call: pre-started workers.
        prestart=_whole_count(r, (*parts, "provisionedConcurrency"), issues) or 0,
        reserved_concurrency=_whole_count(r, (*parts, "reservedConcurrency"), issues),
    )

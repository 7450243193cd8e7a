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
* Functions run as Python handlers: ``handler: path/module.function`` relative to serverless.yml,
  named ``{service}-{stage}-{function}`` (or ``name:``); environment = ``provider.environment``
  overlaid with the function's; integration timeout = the function timeout (default 6 s) capped
  at 29 s (REST, WebSocket) or 30 s (HTTP API).

Unknown keys and plugins are ignored; other event types and settings Portway cannot honour
(authorizers, CloudFormation values) become warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.config.errors import Issues, loc, loc_path
from server.config.model import (
    DEFAULT_STAGE,
    ApiConfig,
    ApiKind,
    GatewayConfig,
    RouteConfig,
    StageConfig,
)
from server.config.rules import (
    BuiltApi,
    check_gateway,
    check_routes,
    check_selection_expression,
    check_stage_name,
    scalar_text,
    split_handler,
)
from server.config.serverless_events import Build, Function, Parts, add_events, cors_routes
from server.config.variables import Resolver
from server.ids import new_api_id

__all__ = ["load_serverless"]

DEFAULT_FUNCTION_TIMEOUT_S = 6  # serverless v3's default Lambda timeout
DEFAULT_MEMORY_MB = 1024
_OFFLINE_OPTIONS = {"host", "httpPort", "lambdaPort", "noPrependStageInUrl", "prefix", "websocketPort"}


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
    payload = scalar_text(r.get("provider", "httpApi", "payload") or "2.0")
    payload = {"1": "1.0", "2": "2.0"}.get(payload, payload)
    if payload not in ("1.0", "2.0"):
        issues.error("provider.httpApi.payload", f"payload {payload!r}: use '1.0' or '2.0'")
    if r.get("provider", "httpApi", "cors"):
        issues.warn("provider.httpApi.cors", "HTTP API CORS is not supported yet (ignored)")
    offline = r.get("custom", "serverless-offline")
    ignored = sorted(set(offline) & _OFFLINE_OPTIONS) if isinstance(offline, dict) else []
    if ignored:
        issues.warn(
            "custom.serverless-offline",
            f"{', '.join(ignored)} not used: Portway takes --host/--port and serves REST APIs under "
            "/{stage}/, as AWS does",
        )
    build = Build(r, issues, source.parent, payload)
    defaults = Function(
        source.parent,
        "",
        "",
        _environment(r, ("provider", "environment"), issues),
        _number(r, ("provider", "timeout"), issues) or DEFAULT_FUNCTION_TIMEOUT_S,
        int(_number(r, ("provider", "memorySize"), issues) or DEFAULT_MEMORY_MB),
    )
    for parts, name in _function_entries(r, issues):
        function = _function(build, parts, f"{service}-{r.stage}-{name}", defaults)
        if function is not None:
            add_events(build, parts, function)
    apis: list[BuiltApi] = []
    if build.rest:
        build.rest.extend(cors_routes(build))
        binary = r.get_deep("provider", "apiGateway", "binaryMediaTypes") or []
        name = str(r.get("provider", "apiName") or service)
        apis.append(_api(name, new_api_id(name), ApiKind.REST, r.stage, build.rest, tuple(map(str, binary))))
    if build.http:
        name = str(r.get("provider", "httpApi", "name") or f"{service}-httpApi")
        apis.append(_api(name, new_api_id(name), ApiKind.HTTP, DEFAULT_STAGE, build.http, ()))
    if build.websocket:
        apis.append(_websocket_api(r, service, build.websocket, issues))
    if not apis:
        issues.warn("functions", "no http, httpApi or websocket events: nothing to serve")
    for built in apis:
        check_routes(built.api.kind, list(zip(built.api.routes, built.route_locations, strict=True)), issues)
    check_gateway(apis, issues)
    region = r.get("provider", "region")
    return GatewayConfig(
        apis=tuple(built.api for built in apis),
        source=source,
        region=str(region) if region else "us-east-1",
        warnings=tuple(issues.warnings),
    )


def _api(
    name: str,
    api_id: str,
    kind: ApiKind,
    stage: str,
    routes: list[tuple[RouteConfig, str]],
    binary: tuple[str, ...],
) -> BuiltApi:
    api = ApiConfig(
        name=name,
        id=api_id,
        kind=kind,
        stages=(StageConfig(stage),),
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
    return environment


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
            issues.error(loc(location, "handler"), "missing handler (path/module.function)")
        return None
    split = split_handler(handler, build.base_dir, loc(location, "handler"), issues)
    runtime = r.get(*parts, "runtime") or r.get("provider", "runtime")
    if runtime is not None and not str(runtime).startswith("python"):
        issues.warn(location, f"runtime {runtime!r}: Portway runs Python handlers only")
    if split is None:
        return None
    return Function(
        code_dir=split[0],
        handler=split[1],
        name=str(r.get(*parts, "name") or default_name),
        environment={**defaults.environment, **_environment(r, (*parts, "environment"), issues)},
        timeout_s=_number(r, (*parts, "timeout"), issues) or defaults.timeout_s,
        memory_mb=int(_number(r, (*parts, "memorySize"), issues) or defaults.memory_mb),
    )

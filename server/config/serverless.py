"""Serverless Framework v3 ``serverless.yml`` -> :class:`~server.config.model.GatewayConfig`.

What AWS would deploy, and what serverless-offline serves from the same file:

* ``http`` events -> one REST API named after the service, on the stage ``--stage`` /
  ``provider.stage`` / ``dev`` (URL ``/{stage}/{path}``); ``private: true`` -> API key required;
  ``cors`` -> an ``OPTIONS`` MOCK route answering the preflight, as serverless deploys it.
* ``httpApi`` events -> one HTTP API on the ``$default`` stage (no stage segment); ``'*'`` is the
  ``$default`` route; payload format from ``provider.httpApi.payload`` (default ``2.0``).
* Functions run as Python handlers: ``handler: path/module.function`` relative to serverless.yml,
  named ``{service}-{stage}-{function}`` (or ``name:``); environment = ``provider.environment``
  overlaid with the function's; integration timeout = the function timeout (default 6 s) capped
  at 29 s (REST) or 30 s (HTTP API).

Unknown keys and plugins are ignored; other event types (and ``websocket``, for now) and settings
Portway cannot honour (authorizers, CloudFormation values) become warnings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.config.errors import Issues, loc, loc_path
from server.config.model import (
    DEFAULT_STAGE,
    HTTP_METHODS,
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    MockResponse,
    RouteConfig,
    StageConfig,
    frozen_map,
)
from server.config.native import scalar_text
from server.config.rules import (
    METHODS,
    BuiltApi,
    check_gateway,
    check_path,
    check_routes,
    check_stage_name,
    check_uri,
    split_handler,
)
from server.config.variables import Resolver
from server.ids import new_api_id

__all__ = ["load_serverless"]

DEFAULT_FUNCTION_TIMEOUT_S = 6  # serverless v3's default Lambda timeout
DEFAULT_MEMORY_MB = 1024
CORS_HEADERS = (
    "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,X-Amz-User-Agent,X-Amzn-Trace-Id"
)

Parts = tuple[str | int, ...]


@dataclasses.dataclass(slots=True)
class _Function:
    code_dir: Path
    handler: str
    name: str
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int


@dataclasses.dataclass(slots=True)
class _Build:
    r: Resolver
    issues: Issues
    base_dir: Path
    payload: str
    rest: list[tuple[RouteConfig, str]] = dataclasses.field(default_factory=list)
    http: list[tuple[RouteConfig, str]] = dataclasses.field(default_factory=list)
    cors: dict[str, tuple[dict[str, Any], set[str], str]] = dataclasses.field(default_factory=dict)


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
    payload = r.get("provider", "httpApi", "payload")
    payload = (
        "2.0"
        if payload is None
        else f"{float(payload):.1f}"
        if isinstance(payload, int | float)
        else str(payload)
    )
    if payload not in ("1.0", "2.0"):
        issues.error("provider.httpApi.payload", f"payload {payload!r}: use '1.0' or '2.0'")
    if r.get("provider", "httpApi", "cors"):
        issues.warn("provider.httpApi.cors", "HTTP API CORS is not supported yet (ignored)")
    build = _Build(r, issues, source.parent, payload)
    defaults = _Function(
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
            _events(build, parts, function)
    apis: list[BuiltApi] = []
    if build.rest:
        build.rest.extend(_cors_routes(build))
        binary = r.get_deep("provider", "apiGateway", "binaryMediaTypes") or []
        name = str(r.get("provider", "apiName") or service)
        apis.append(_api(name, new_api_id(name), ApiKind.REST, r.stage, build.rest, tuple(map(str, binary))))
    if build.http:
        name = str(r.get("provider", "httpApi", "name") or f"{service}-httpApi")
        apis.append(_api(name, new_api_id(name), ApiKind.HTTP, DEFAULT_STAGE, build.http, ()))
    if not apis:
        issues.warn("functions", "no http or httpApi events: nothing to serve")
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


def _function(build: _Build, parts: Parts, default_name: str, defaults: _Function) -> _Function | None:
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
    return _Function(
        code_dir=split[0],
        handler=split[1],
        name=str(r.get(*parts, "name") or default_name),
        environment={**defaults.environment, **_environment(r, (*parts, "environment"), issues)},
        timeout_s=_number(r, (*parts, "timeout"), issues) or defaults.timeout_s,
        memory_mb=int(_number(r, (*parts, "memorySize"), issues) or defaults.memory_mb),
    )


def _events(build: _Build, parts: Parts, function: _Function) -> None:
    events = build.r.get(*parts, "events")
    if events is None:
        return
    if not isinstance(events, list):
        build.issues.error(loc_path((*parts, "events")), "events must be a list")
        return
    for index in range(len(events)):
        event_parts = (*parts, "events", index)
        event = build.r.get(*event_parts)
        location = loc_path(event_parts)
        if not isinstance(event, dict) or len(event) != 1:
            build.issues.error(location, "an event is a mapping with one key, like `http:` or `httpApi:`")
            continue
        kind = str(next(iter(event)))
        if kind in _EVENT_BUILDERS:
            _EVENT_BUILDERS[kind](build, (*event_parts, kind), function)
        elif kind == "websocket":  # served by a later release: add a builder to _EVENT_BUILDERS
            build.issues.warn(location, "websocket events are not served yet (ignored)")
        else:
            build.issues.warn(location, f"{kind!r} events are not served by Portway (ignored)")


def _method_path(
    build: _Build, parts: Parts, http_api: bool
) -> tuple[str, str, tuple[str, ...], dict[str, Any]] | None:
    """Read ``'METHOD path'`` or ``{method, path}``; return (METHOD, /path, parameters, settings)."""
    raw, location = build.r.get(*parts), loc_path(parts)
    if isinstance(raw, str):
        method, _, path = raw.strip().partition(" ")
        settings: dict[str, Any] = {}
        if http_api and raw.strip() == "*":
            method, path = "*", "*"
    elif isinstance(raw, dict):
        settings = raw
        method, path = build.r.get(*parts, "method"), build.r.get(*parts, "path")
        for key, value in (("method", method), ("path", path)):
            if not isinstance(value, str):
                build.issues.error(loc(location, key), f"missing {key}")
                return None
    else:
        build.issues.error(location, "expected 'METHOD path' or {method: ..., path: ...}")
        return None
    method = "ANY" if method.strip() in ("*", "any", "ANY") else method.strip().upper()
    if method not in METHODS:
        build.issues.error(location, f"method {method!r}: use one of {', '.join(METHODS)} (or *)")
        return None
    path = path.strip()
    if http_api and path == "*":
        return method, DEFAULT_STAGE, (), settings
    path = "/" + path.strip("/")
    parameters = check_path(path, location, build.issues)
    return None if parameters is None else (method, path, parameters, settings)


def _python(function: _Function, timeout_cap_s: int, payload: str) -> IntegrationConfig:
    return IntegrationConfig(
        type=IntegrationType.PYTHON,
        timeout_ms=max(50, int(min(function.timeout_s, timeout_cap_s) * 1000)),
        handler=function.handler,
        code_dir=function.code_dir,
        function_name=function.name,
        environment=frozen_map(function.environment),
        payload_format=payload,
        memory_mb=function.memory_mb,
    )


def _http_event(build: _Build, parts: Parts, function: _Function) -> None:
    parsed = _method_path(build, parts, http_api=False)
    if parsed is None:
        return
    method, path, parameters, settings = parsed
    r, location = build.r, loc_path(parts)
    if "authorizer" in settings:
        build.issues.warn(location, "authorizers are not enforced yet: this route is open")
    style = str(r.get(*parts, "integration") or "lambda-proxy").lower().replace("_", "-")
    integration = _python(function, 29, "1.0")
    if style in ("http-proxy", "http"):
        uri = r.get(*parts, "request", "uri")
        if not isinstance(uri, str):
            build.issues.error(loc(location, "request"), f"integration {style} needs request.uri")
            return
        check_uri(uri, parameters, loc_path((*parts, "request", "uri")), build.issues)
        kind = IntegrationType.HTTP_PROXY if style == "http-proxy" else IntegrationType.HTTP
        integration = IntegrationConfig(kind, integration.timeout_ms, uri=uri, http_method=method)
    elif style not in ("lambda-proxy", "aws-proxy"):
        build.issues.warn(loc(location, "integration"), f"integration {style!r} is served as lambda-proxy")
    build.rest.append((RouteConfig(method, path, integration, bool(r.get(*parts, "private"))), location))
    cors = r.get_deep(*parts, "cors")
    if cors:
        entry = build.cors.setdefault(path, (cors if isinstance(cors, dict) else {}, set(), location))
        entry[1].add(method)


def _http_api_event(build: _Build, parts: Parts, function: _Function) -> None:
    parsed = _method_path(build, parts, http_api=True)
    if parsed is None:
        return
    method, path, _, settings = parsed
    location = loc_path(parts)
    for key, note in (
        ("authorizer", "authorizers are not enforced yet: this route is open"),
        ("private", "HTTP APIs have no API keys (ignored)"),
    ):
        if key in settings:
            build.issues.warn(loc(location, key), note)
    build.http.append((RouteConfig(method, path, _python(function, 30, build.payload)), location))


_EVENT_BUILDERS = {"http": _http_event, "httpApi": _http_api_event}


def _cors_routes(build: _Build) -> list[tuple[RouteConfig, str]]:
    """The OPTIONS MOCK methods serverless deploys for ``cors: true`` (unless OPTIONS is defined)."""
    defined = {(route.method, route.path) for route, _ in build.rest}
    routes = []
    for path, (settings, methods, location) in build.cors.items():
        if ("OPTIONS", path) in defined:
            continue
        allowed = sorted(set(HTTP_METHODS) - {"OPTIONS"}) if "ANY" in methods else sorted(methods)
        origins = settings.get("origins") or [settings.get("origin", "*")]
        headers = {
            "Access-Control-Allow-Origin": ",".join(map(str, origins)),
            "Access-Control-Allow-Headers": ",".join(map(str, settings.get("headers") or [])) or CORS_HEADERS,
            "Access-Control-Allow-Methods": ",".join(["OPTIONS", *allowed]),
        }
        if settings.get("allowCredentials"):
            headers["Access-Control-Allow-Credentials"] = "true"
        if settings.get("maxAge"):
            headers["Access-Control-Max-Age"] = str(settings["maxAge"])
        mock = MockResponse(200, frozen_map(headers), "")
        routes.append(
            (RouteConfig("OPTIONS", path, IntegrationConfig(IntegrationType.MOCK, mock=mock)), location)
        )
    return routes

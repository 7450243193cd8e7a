"""serverless.yml events -> routes: ``http`` (REST API), ``httpApi`` (HTTP API), ``cors`` preflights.

``http``: ``- http: GET users/{id}`` or ``{path, method, private, cors, integration}``; methods
``any``/``*`` mean ``ANY``; paths may lack the leading slash. ``integration: http-proxy`` with
``request.uri`` becomes an HTTP_PROXY route; anything other than lambda-proxy is served as
lambda-proxy, with a warning. ``httpApi``: ``'GET /hello'``, ``'*'`` (the ``$default`` route) or
``{method, path}``. ``websocket``: ``- websocket: $connect`` or ``{route, routeResponseSelectionExpression,
authorizer}`` (one WebSocket API per service); ``routeResponseSelectionExpression: $default`` makes the
route two-way. Other event types are warnings.

``throttling: {maxRequestsPerSecond, maxConcurrentRequests}`` (or ``{disabled: true}``) on ``http`` and
``httpApi`` events is the serverless-api-gateway-throttling plugin's per-endpoint setting: the route's
method throttle, its missing values taken from the stage's (``custom.apiGatewayThrottling``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from server.config.errors import Issues, loc, loc_path, suggestion
from server.config.model import (
    DEFAULT_STAGE,
    HTTP_METHODS,
    ApiKind,
    AuthorizerConfig,
    IntegrationConfig,
    IntegrationType,
    MockResponse,
    RouteConfig,
    ThrottleSettings,
    frozen_map,
)
from server.config.rules import METHODS, check_path, check_uri, check_websocket_route_key
from server.config.serverless_auth import route_authorizer
from server.config.serverless_cache import event_cache
from server.config.transform import LAMBDA_DEFAULT_RESPONSES, serverless_transform
from server.config.validation import serverless_validation
from server.config.variables import Resolver

__all__ = [
    "AWS_DEFAULT_THROTTLE",
    "EVENT_BUILDERS",
    "EVENT_KEYS",
    "OTHER_EVENT_TYPES",
    "THROTTLING_PLUGIN",
    "Build",
    "Function",
    "Parts",
    "add_events",
    "cors_routes",
    "plugin_throttle",
]

Parts = tuple[str | int, ...]

AWS_DEFAULT_THROTTLE = ThrottleSettings(10000.0, 5000)  # the account default; the plugin's too
THROTTLING_PLUGIN = "serverless-api-gateway-throttling"
_THROTTLING_KEYS = ("maxRequestsPerSecond", "maxConcurrentRequests")

CORS_HEADERS = (
    "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,X-Amz-User-Agent,X-Amzn-Trace-Id"
)


@dataclasses.dataclass(slots=True)
class Function:
    """A serverless function as every event of it is served (timeout in seconds, before capping)."""

    code_dir: Path
    handler: str
    name: str
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int
    runtime: str | None = None
    layers: tuple[Path, ...] = ()
    requirements: Path | None = None
    prestart: int = 0  # provisionedConcurrency
    reserved_concurrency: int | None = None  # reservedConcurrency


@dataclasses.dataclass(slots=True)
class Build:
    """Routes gathered while reading functions: REST (``http``), HTTP API (``httpApi``) and WebSocket
    (``websocket``) routes with their locations, ``cors`` settings per REST path, and per-route
    ``throttling`` (route key -> settings) of the REST and HTTP APIs. ``stage_throttle``: the
    plugin's stage settings, which a route's ``throttling`` completes."""

    r: Resolver
    issues: Issues
    base_dir: Path
    payload: str
    stage_throttle: ThrottleSettings | None = None
    rest: list[tuple[RouteConfig, str]] = dataclasses.field(default_factory=list)
    http: list[tuple[RouteConfig, str]] = dataclasses.field(default_factory=list)
    websocket: list[tuple[RouteConfig, str]] = dataclasses.field(default_factory=list)
    cors: dict[str, tuple[dict[str, Any], set[str], str]] = dataclasses.field(default_factory=dict)
    rest_throttles: dict[str, ThrottleSettings] = dataclasses.field(default_factory=dict)
    http_throttles: dict[str, ThrottleSettings] = dataclasses.field(default_factory=dict)
    throttling_at: str = ""  # the first route `throttling:`, for the missing-plugin warning
    # JWT/Cognito authorizers built so far, by name: routes naming one share one object (one JWKS
    # cache and one verified-token cache per authorizer, as on AWS).
    jwt_authorizers: dict[str, AuthorizerConfig] = dataclasses.field(default_factory=dict)
    # The service's functions by key (authorizers name them; read on first use), and the
    # authorizers built so far by (API kind, name) with where they were first declared.
    function_named: Callable[[str], Function | None] = lambda _: None
    function_keys: tuple[str, ...] = ()
    authorizers: dict[tuple[ApiKind, str], tuple[AuthorizerConfig, str]] = dataclasses.field(
        default_factory=dict
    )
    models: dict[str, Mapping[str, object]] = dataclasses.field(default_factory=dict)  # request models


def add_events(build: Build, parts: Parts, function: Function) -> None:
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
        if kind in EVENT_BUILDERS:
            _check_event_keys(build, (*event_parts, kind), EVENT_KEYS[kind])
            EVENT_BUILDERS[kind](build, (*event_parts, kind), function)
        elif kind in OTHER_EVENT_TYPES:
            build.issues.warn(location, f"{kind!r} events are not served by Portway (ignored)")
        else:
            known = (*EVENT_BUILDERS, *OTHER_EVENT_TYPES)
            build.issues.warn(location, f"unknown event type {kind!r}{suggestion(kind, known)} (ignored)")


def _check_event_keys(build: Build, parts: Parts, known: tuple[str, ...]) -> None:
    """Serverless warns about keys its schema does not know (``configValidationMode: warn``): a
    misspelt ``cros: true`` would otherwise be silently ignored."""
    body = build.r.get(*parts)
    if not isinstance(body, dict):
        return
    for key in body:
        if key not in known:
            build.issues.warn(
                loc_path((*parts, str(key))),
                f"unknown key {key!r}{suggestion(str(key), known, 'known')} (ignored)",
            )


def _method_path(
    build: Build, parts: Parts, http_api: bool
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


def _python(function: Function, timeout_cap_s: int, payload: str) -> IntegrationConfig:
    return IntegrationConfig(
        type=IntegrationType.PYTHON,
        timeout_ms=max(50, int(min(function.timeout_s, timeout_cap_s) * 1000)),
        handler=function.handler,
        code_dir=function.code_dir,
        function_name=function.name,
        environment=frozen_map(function.environment),
        payload_format=payload,
        memory_mb=function.memory_mb,
        runtime=function.runtime,
        layers=function.layers,
        requirements=function.requirements,
        prestart=function.prestart,
        reserved_concurrency=function.reserved_concurrency,
    )


def _http_event(build: Build, parts: Parts, function: Function) -> None:
    parsed = _method_path(build, parts, http_api=False)
    if parsed is None:
        return
    method, path, parameters, settings = parsed
    r, location = build.r, loc_path(parts)
    auth = route_authorizer(build, parts, ApiKind.REST)
    if not auth.ok:
        return  # reported; never served open
    style = str(r.get(*parts, "integration") or "lambda-proxy").lower().replace("_", "-")
    integration = _python(function, 29, "1.0")
    if style in ("http-proxy", "http"):
        uri = r.get(*parts, "request", "uri")
        if not isinstance(uri, str):
            build.issues.error(loc(location, "request"), f"integration {style} needs request.uri")
            return
        check_uri(uri, parameters, loc_path((*parts, "request", "uri")), build.issues)
        kind = IntegrationType.HTTP_PROXY if style == "http-proxy" else IntegrationType.HTTP
        extra = {}
        if kind is IntegrationType.HTTP:
            extra = serverless_transform(
                r.get_deep(*parts, "request"), r.get_deep(*parts, "response"), location, build.issues
            )
        integration = IntegrationConfig(kind, integration.timeout_ms, uri=uri, http_method=method, **extra)
    elif style == "mock":
        extra = serverless_transform(
            r.get_deep(*parts, "request"), r.get_deep(*parts, "response"), location, build.issues
        )
        integration = IntegrationConfig(IntegrationType.MOCK, mock=MockResponse(), **extra)
    elif style in ("lambda", "aws"):
        extra = serverless_transform(
            r.get_deep(*parts, "request"), r.get_deep(*parts, "response"), location, build.issues
        )
        if not extra.get("responses"):
            extra["responses"] = LAMBDA_DEFAULT_RESPONSES
        integration = dataclasses.replace(integration, custom=True, **extra)
    elif style not in ("lambda-proxy", "aws-proxy"):
        build.issues.warn(loc(location, "integration"), f"integration {style!r} is served as lambda-proxy")
    route = RouteConfig(
        method,
        path,
        integration,
        bool(r.get(*parts, "private")),
        authorizer=auth.authorizer,
        authorization_scopes=auth.scopes,
        validation=serverless_validation(r, parts, build.models, build.issues),
        cache=event_cache(r, parts, parameters, build.issues),
    )
    build.rest.append((route, location))
    if "throttling" in settings:
        _route_throttle(build, parts, route.route_key, build.rest_throttles)
    cors = r.get_deep(*parts, "cors")
    if cors:
        entry = build.cors.setdefault(path, (cors if isinstance(cors, dict) else {}, set(), location))
        entry[1].add(method)


def _http_api_event(build: Build, parts: Parts, function: Function) -> None:
    parsed = _method_path(build, parts, http_api=True)
    if parsed is None:
        return
    method, path, _, settings = parsed
    location = loc_path(parts)
    auth = route_authorizer(build, parts, ApiKind.HTTP)
    if not auth.ok:
        return
    if "private" in settings:
        build.issues.warn(loc(location, "private"), "HTTP APIs have no API keys (ignored)")
    route = RouteConfig(
        method,
        path,
        _python(function, 30, build.payload),
        authorizer=auth.authorizer,
        authorization_scopes=auth.scopes,
    )
    build.http.append((route, location))
    if "throttling" in settings:
        _route_throttle(build, parts, route.route_key, build.http_throttles)


def _route_throttle(build: Build, parts: Parts, route_key: str, into: dict[str, ThrottleSettings]) -> None:
    where = (*parts, "throttling")
    build.throttling_at = build.throttling_at or loc_path(where)
    if build.r.get(*where) is None:
        return
    if build.r.get(*where, "disabled") is True:
        # The plugin's -1: no method limit. The account bucket (AWS's default in a serverless.yml)
        # is then the only limit, which a method bucket with the same limits leaves unchanged.
        if build.stage_throttle is not None:
            into[route_key] = AWS_DEFAULT_THROTTLE
        return
    throttle = plugin_throttle(build.r, where, build.stage_throttle or AWS_DEFAULT_THROTTLE, build.issues)
    if throttle is not None:
        into[route_key] = throttle


def plugin_throttle(
    r: Resolver, parts: Parts, base: ThrottleSettings, issues: Issues
) -> ThrottleSettings | None:
    """``{maxRequestsPerSecond, maxConcurrentRequests}`` (serverless-api-gateway-throttling); a
    missing value is ``base``'s. None if absent or invalid (reported)."""
    raw, location = r.get(*parts), loc_path(parts)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        issues.error(location, "expected {maxRequestsPerSecond: N, maxConcurrentRequests: N}")
        return None
    valid = True
    for key in raw:
        if key not in (*_THROTTLING_KEYS, "disabled"):
            issues.error(loc(location, str(key)), f"unknown key {key!r} (use {', '.join(_THROTTLING_KEYS)})")
            valid = False
    rate, burst = r.get(*parts, "maxRequestsPerSecond"), r.get(*parts, "maxConcurrentRequests")
    if rate is None:
        rate = base.rate
    elif isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
        issues.error(loc(location, "maxRequestsPerSecond"), f"{rate!r} is not a number >= 0")
        valid = False
    if burst is None:
        burst = base.burst
    elif isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        issues.error(loc(location, "maxConcurrentRequests"), f"{burst!r} is not an integer >= 0")
        valid = False
    return ThrottleSettings(float(rate), burst) if valid else None


def _websocket_event(build: Build, parts: Parts, function: Function) -> None:
    """``- websocket: $connect`` or ``- websocket: {route, routeResponseSelectionExpression, authorizer}``."""
    r, issues, location = build.r, build.issues, loc_path(parts)
    raw = r.get(*parts)
    if isinstance(raw, str):
        key, settings = raw.strip(), {}
    elif isinstance(raw, dict):
        settings, key = raw, r.get(*parts, "route")
        if not isinstance(key, str):
            issues.error(loc(location, "route"), "missing route (a route key: $connect, sendMessage, ...)")
            return
        key = key.strip()
    else:
        issues.error(location, "expected a route key ($connect, sendMessage) or {route: ...}")
        return
    if not check_websocket_route_key(key, location, issues):
        return
    response = False
    if "routeResponseSelectionExpression" in settings:
        expression = r.get(*parts, "routeResponseSelectionExpression")
        if expression == "$default":
            response = True
        else:
            issues.error(
                loc(location, "routeResponseSelectionExpression"),
                f"{expression!r}: AWS supports only $default (a two-way route)",
            )
    authorizer = None
    if "authorizer" in settings:
        if key != "$connect":
            issues.error(loc(location, "authorizer"), "WebSocket APIs authorize on the $connect route only")
            return
        auth = route_authorizer(build, parts, ApiKind.WEBSOCKET)
        if not auth.ok:
            return
        authorizer = auth.authorizer
    route = RouteConfig("", key, _python(function, 29, "1.0"), route_response=response, authorizer=authorizer)
    build.websocket.append((route, location))


EVENT_BUILDERS = {"http": _http_event, "httpApi": _http_api_event, "websocket": _websocket_event}
# The keys of each served event in Serverless v3's schema, plus those of plugins Portway honours
# (serverless-api-gateway-throttling's `throttling`) or that are common and harmless to ignore.
EVENT_KEYS = {
    "http": (
        *("path", "method", "cors", "private", "integration", "request", "response", "authorizer", "async"),
        *("connectionId", "connectionType", "operationId", "throttling", "caching", "documentation"),
        "reqValidatorName",
    ),
    "httpApi": ("method", "path", "authorizer", "private", "throttling"),
    "websocket": ("route", "routeResponseSelectionExpression", "authorizer"),
}
# The other event types of Serverless v3 (AWS provider): known, but not served by a gateway.
OTHER_EVENT_TYPES = (
    *("s3", "schedule", "sns", "sqs", "stream", "alb", "alexaSkill", "alexaSmartHome", "iot"),
    *("iotFleetProvisioning", "cloudwatchEvent", "cloudwatchLog", "cognitoUserPool", "eventBridge"),
    *("msk", "kafka", "activemq", "rabbitmq", "cloudFront"),
)


def cors_routes(build: Build) -> list[tuple[RouteConfig, str]]:
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

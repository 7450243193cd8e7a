"""The REST / HTTP API request pipeline: one explicit list of stages, in API Gateway's order.

    route -> authorize -> throttle -> read body -> cache lookup -> validate -> transform request
          -> integrate -> transform response -> cache store

The body is read only once a request has a route, its key and its throttle token (the adapter
passes a reader; see :class:`ReadBodyStage`): a refused request never costs its body's memory.

Each stage is a small object with ``async on_request(ctx) -> HttpResponse | None`` (``None`` means
"continue"); a stage that answers short-circuits the rest. Stages raise
:class:`~server.errors.GatewayError` for every client-visible failure and the runner renders it in
one place (:func:`server.render.render_error`). Stages never call each other, so the order lives
only in :data:`PHASES`: :func:`default_stages` takes the optional phases by name and places them;
a phase with nothing to do for a configuration is simply not passed (it costs nothing).

This module does no network I/O itself and imports no I/O library: integrations are injected.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl

from routes.dispatch import ApiDispatcher, Dispatch
from routes.dot_segments import has_dot_segment
from routes.integrations.base import Integration
from routes.table import RouteMatch
from server.auth.base import AuthResult
from server.config.model import ApiKind, GatewayConfig
from server.errors import (
    ApiConfigurationError,
    GatewayError,
    IncompleteSignature,
    MissingAuthenticationToken,
    NotFound,
    RequestTooLarge,
)
from server.events import RequestInfo
from server.gateway_responses import ErrorScope, GatewayResponses, request_lookup
from server.ids import new_api_id, new_message_id, new_request_uuid
from server.messages import HttpRequest, HttpResponse
from server.render import add_request_headers, render_error
from server.request_metrics import RequestMetrics, RouteLabels, RouteSeries, series_key
from server.trace import TRACE_HEADER, trace_header

__all__ = [
    "PHASES",
    "BodyReader",
    "Gateway",
    "ReadBodyStage",
    "RequestContext",
    "Stage",
    "default_stages",
    "read_body",
]

# The request phases in API Gateway's order. ``route``, ``read_body`` and ``integrate`` are always
# present: the body is read only once routing, authorization and throttling accepted the request
# (a refused request never costs its body's memory). ``integrate`` answers, so what acts on the
# response (transform response, cache store) belongs to the phase that produced the request side
# (cache) or wraps the integration (transform).
PHASES = (
    "cors",
    "route",
    "authorize",
    "throttle",
    "read_body",
    "cache",
    "validate",
    "transform_request",
    "integrate",
)
_FIXED = frozenset({"route", "read_body", "integrate"})

log = logging.getLogger("portway.pipeline")

# Reads the request body, refusing more than the given byte count (raises GatewayErrors:
# RequestTooLarge, RequestTimeout, ServiceUnavailable). Injected by the adapter, so this module
# stays free of I/O.
BodyReader = Callable[[int], Awaitable[bytes]]


@dataclass(slots=True)
class RequestContext:
    """Per-request state; the only object allocated per request besides the event."""

    request: HttpRequest
    request_id: str
    extended_request_id: str
    now_ms: int
    http_api: bool = False
    dispatch: Dispatch | None = None
    match: RouteMatch | None = None
    info: RequestInfo | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    auth: AuthResult | None = None  # set by the authorize phase for routes with an authorizer
    read_body: BodyReader | None = None
    # HTTP API CORS (the cors phase): set on every answer instead of the backend's CORS headers.
    cors_headers: list[tuple[str, str]] | None = None
    # Set by the cache phase on a miss: the integration's response goes to it before it is sent.
    cache_store: Callable[[HttpResponse], Awaitable[None]] | None = None


class Stage(Protocol):
    async def on_request(self, ctx: RequestContext) -> HttpResponse | None: ...


class RouteStage:
    """Find the API, stage and route; build the :class:`RequestInfo` every later stage uses.

    No route: REST answers 403 ``Missing Authentication Token`` (``IncompleteSignature`` when a
    non-SigV4 ``Authorization`` header is present), HTTP APIs answer 404 ``Not Found``
    (aws-contract.md §0.4, §0.5).
    """

    def __init__(self, dispatcher: ApiDispatcher, config: GatewayConfig) -> None:
        self._dispatcher = dispatcher
        self._account_id = config.account_id
        self._deployment_id = new_api_id(str(config.source))[:6]
        self._resource_ids: dict[tuple[str, str], str] = {}

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        req = ctx.request
        dispatch = self._dispatcher.resolve(req.raw_path)
        if dispatch is None:
            if self._dispatcher.has_default_stage and not self._dispatcher.has_rest:
                ctx.http_api = True
                raise NotFound()
            raise self._missing_token(req)
        ctx.dispatch = dispatch
        ctx.http_api = dispatch.api.kind is ApiKind.HTTP
        if has_dot_segment(req.raw_path):
            # Answered as "no such route" (routes/dot_segments.py says why not resolved).
            if ctx.http_api:
                raise NotFound()
            raise self._missing_token(req)
        # Content-Length is checked before any body byte is read (413 at once, AWS's answer too).
        limit = dispatch.api.max_body_bytes
        if len(req.body) > limit or (req.content_length or 0) > limit:
            raise RequestTooLarge(limit)
        match = dispatch.table.match(req.method, dispatch.path)
        if match is None:
            if ctx.http_api:
                raise NotFound()
            raise self._missing_token(req)
        ctx.match = match
        api = dispatch.api
        # Like a custom-domain base-path mapping, the event's `path` includes the base path; it
        # keeps a trailing slash and inner double slashes as sent, but not the slashes AWS skips
        # around the stage, which only requestContext.path keeps after the stage (routes/dispatch.py).
        raw = "/" + req.raw_path.lstrip("/")
        after_stage = raw[len(dispatch.stage_prefix) :]
        event_path = "/" + after_stage.lstrip("/") if dispatch.stage_prefix else after_stage or "/"
        ctx.info = RequestInfo(
            request=req,
            api_id=api.id,
            account_id=self._account_id,
            stage=dispatch.stage.name,
            stage_prefix=dispatch.stage_prefix,
            path=event_path,
            resource=match.resource,
            route_key=match.route.route_key,
            path_parameters=match.path_parameters,
            stage_variables=dispatch.stage.variables,
            request_id=ctx.request_id,
            extended_request_id=ctx.extended_request_id,
            now_ms=ctx.now_ms,
            binary_media_types=api.binary_media_types,
            resource_id=self._resource_id(api.id, match.resource),
            deployment_id=self._deployment_id,
            trace_id=trace_header(req.header(TRACE_HEADER), ctx.now_ms),
            context_path=raw if raw != dispatch.stage_prefix + event_path else "",
        )
        return None

    def _resource_id(self, api_id: str, resource: str) -> str:
        key = (api_id, resource)
        found = self._resource_ids.get(key)
        if found is None:
            found = self._resource_ids[key] = new_api_id(api_id + resource)[:6]
        return found

    @staticmethod
    def _missing_token(req: HttpRequest) -> MissingAuthenticationToken:
        auth = req.header("authorization")
        if auth and not auth.startswith("AWS4-HMAC-SHA256"):
            # AWS tries to parse any Authorization header as SigV4 before answering 403
            # (aws-contract.md §0.4).
            digest = base64.b64encode(hashlib.sha256(auth.encode()).digest()).decode()
            return IncompleteSignature(
                "Invalid key=value pair (missing equal-sign) in Authorization header "
                f"(hashed with SHA-256 and encoded with Base64): '{digest}'."
            )
        return MissingAuthenticationToken()


async def read_body(ctx: RequestContext) -> None:
    """Read the body through the adapter's reader into ``ctx.request`` (once; later calls do
    nothing). The ``read_body`` phase calls it; so does a phase that needs the body earlier
    (a SigV4 signature covers the payload's hash)."""
    if ctx.read_body is not None:
        assert ctx.dispatch is not None and ctx.info is not None  # RouteStage ran
        reader, ctx.read_body = ctx.read_body, None
        ctx.request.body = await reader(ctx.dispatch.api.max_body_bytes)  # RequestInfo shares it


class ReadBodyStage:
    """Read the body (the adapter's reader), now that the request is routed and admitted."""

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        await read_body(ctx)
        return None


class IntegrateStage:
    """Call the route's integration. Integrations enforce their own timeouts (504).
    ``metrics``: where the integration's latency goes (timed with ``clock``), or ``None``."""

    def __init__(
        self,
        integrations: Mapping[int, Integration],
        metrics: RequestMetrics | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._integrations = integrations
        self._metrics = metrics
        self._clock = clock

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        assert ctx.match is not None and ctx.info is not None  # RouteStage ran
        integration = self._integrations.get(id(ctx.match.route))
        if integration is None:
            raise ApiConfigurationError()
        metrics = self._metrics
        started = self._clock() if metrics is not None else 0.0
        try:
            response = await integration.invoke(ctx.info)
        finally:
            if metrics is not None:
                route_series(ctx, metrics).integration.observe(self._clock() - started)
        if ctx.cache_store is not None:
            await ctx.cache_store(response)
        return response


def route_series(ctx: RequestContext, metrics: RequestMetrics) -> RouteSeries:
    """The metrics series of the request's route and stage (named the first time it is seen)."""
    match, dispatch = ctx.match, ctx.dispatch
    if match is None or dispatch is None:
        return metrics.unmatched
    key = series_key(id(match.route), id(dispatch.stage))
    series = metrics.series(key)
    if series is None:
        route = match.route
        name = route.path if route.path == "$default" else f"{route.method} {route.path}"
        series = metrics.add_series(key, RouteLabels(dispatch.api.name, dispatch.stage.name, name))
    return series


def default_stages(
    dispatcher: ApiDispatcher,
    config: GatewayConfig,
    integrations: Mapping[int, Integration],
    *,
    metrics: RequestMetrics | None = None,
    **phases: Stage | None,
) -> list[Stage]:
    """The stage list in the order of :data:`PHASES`.

    ``phases``: the optional phases by name (``authorize=``, ``throttle=``, ...; ``None`` = not
    used). They do store or network I/O and so are built by :mod:`server.app` rather than imported
    here. An unknown name is a programming error (ValueError), never silently dropped.
    """
    misplaced = set(phases) - (set(PHASES) - _FIXED)
    if misplaced:
        raise ValueError(f"unknown or fixed phase(s): {sorted(misplaced)}")
    named: dict[str, Stage | None] = {
        **phases,
        "route": RouteStage(dispatcher, config),
        "read_body": ReadBodyStage(),
        "integrate": IntegrateStage(integrations, metrics),
    }
    return [stage for name in PHASES if (stage := named.get(name)) is not None]


def _scope(ctx: RequestContext) -> ErrorScope:
    """What a customised gateway response may read of the failed request ($context, parameters)."""
    req = ctx.request
    context = {
        "requestId": ctx.request_id,
        "extendedRequestId": ctx.extended_request_id,
        "httpMethod": req.method,
        "identity.sourceIp": req.source_ip,
        "domainName": req.host.partition(":")[0],
        "protocol": req.protocol,
    }
    stage_variables: Mapping[str, str] = {}
    path_parameters: Mapping[str, str] = {}
    if ctx.dispatch is not None:
        context["apiId"] = ctx.dispatch.api.id
        context["stage"] = ctx.dispatch.stage.name
        stage_variables = ctx.dispatch.stage.variables
    if ctx.info is not None:
        context["resourcePath"] = ctx.info.resource
        context["path"] = ctx.info.stage_prefix + ctx.info.path
        context["accountId"] = ctx.info.account_id
        path_parameters = ctx.info.path_parameters
    query = dict(parse_qsl(req.query_string, keep_blank_values=True))
    return ErrorScope(context, stage_variables, request_lookup(req.headers, query, path_parameters))


AccessLine = Callable[[str, str, int, float, str], None]  # method, path, status, latency ms, target
AccessRecord = Callable[["RequestContext", HttpResponse, float], None]  # a formatted access line


class Gateway:
    """Runs the stage list for one request and renders every failure in one place.

    ``access``: called once per answered request (the console's access line), or ``None``.
    ``metrics``: requests by route and status and their latency (``/@metrics``), or ``None``.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        clock: Callable[[], float] = time.time,
        access: AccessLine | None = None,
        access_record: AccessRecord | None = None,
        metrics: RequestMetrics | None = None,
        gateway_responses: Mapping[str, GatewayResponses] | None = None,
    ) -> None:
        self._stages = tuple(stages)
        self._clock = clock
        self._access = access
        self._access_record = access_record  # an access log format's line, from the whole context
        self._metrics = metrics
        self._gateway_responses = dict(gateway_responses or {})

    async def handle(self, request: HttpRequest, read_body: BodyReader | None = None) -> HttpResponse:
        """Answer ``request``; ``read_body``: the body is not in ``request`` yet, read it with
        this once routing and admission passed (``None``: ``request.body`` is complete)."""
        started = self._clock()
        ctx = RequestContext(
            request=request,
            request_id=new_request_uuid(),
            extended_request_id=new_message_id(),
            now_ms=int(started * 1000),
            read_body=read_body,
        )
        response: HttpResponse | None = None
        try:
            for stage in self._stages:
                response = await stage.on_request(ctx)
                if response is not None:
                    break
            if response is None:
                raise ApiConfigurationError()
        except GatewayError as error:
            responses = None
            if self._gateway_responses and ctx.dispatch is not None:
                responses = self._gateway_responses.get(ctx.dispatch.api.id)
            if responses is None:
                response = render_error(error, http_api=ctx.http_api)
            else:
                response = render_error(error, http_api=ctx.http_api, responses=responses, scope=_scope(ctx))
        except Exception:
            # A bug, not a client error: log it and answer like AWS's internal failure.
            log.exception("unexpected error handling %s %s", request.method, request.raw_path)
            response = render_error(ApiConfigurationError(), http_api=ctx.http_api)
        if ctx.response_headers:
            response.headers.extend(ctx.response_headers)
        if ctx.cors_headers is not None:
            kept = [h for h in response.headers if not h[0].lower().startswith("access-control-")]
            response.headers = kept + ctx.cors_headers
        add_request_headers(
            response,
            request_id=ctx.request_id,
            extended_request_id=ctx.extended_request_id,
            http_api=ctx.http_api,
        )
        metrics = self._metrics
        if metrics is not None:
            route_series(ctx, metrics).answered(response.status, self._clock() - started)
        if self._access is not None:
            target = "-"
            if ctx.match is not None:
                integration = ctx.match.route.integration
                target = integration.function_name or integration.type.value
            self._access(
                request.method, request.raw_path, response.status, (self._clock() - started) * 1000, target
            )
        if self._access_record is not None:
            self._access_record(ctx, response, (self._clock() - started) * 1000)
        return response

"""The REST / HTTP API request pipeline: one explicit list of stages, in API Gateway's order.

    route -> authorize -> throttle -> cache lookup -> validate -> transform request
          -> integrate -> transform response -> cache store

Each stage is a small object with ``async on_request(ctx) -> HttpResponse | None`` (``None`` means
"continue"); a stage that answers short-circuits the rest. Stages raise
:class:`~server.errors.GatewayError` for every client-visible failure and the runner renders it in
one place (:func:`server.render.render_error`). Stages never call each other, so the order lives
only in :func:`default_stages`. Stages not listed yet (authorize, throttle, cache, validate,
transform) slot into that list in the order above as they are built.

This module does no network I/O itself and imports no I/O library: integrations are injected.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from routes.dispatch import ApiDispatcher, Dispatch
from routes.integrations.base import Integration
from routes.table import RouteMatch
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
from server.ids import new_api_id, new_message_id, new_request_uuid
from server.messages import HttpRequest, HttpResponse
from server.render import add_request_headers, render_error

__all__ = ["Gateway", "RequestContext", "Stage", "default_stages"]

log = logging.getLogger("portway.pipeline")


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


class Stage(Protocol):
    async def on_request(self, ctx: RequestContext) -> HttpResponse | None: ...


class RouteStage:
    """Find the API, stage and route; build the :class:`RequestInfo` every later stage uses.

    No route: REST answers 403 ``Missing Authentication Token`` (``IncompleteSignature`` when a
    non-SigV4 ``Authorization`` header is present), HTTP APIs answer 404 ``Not Found`` (§0.4, §0.5).
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
        if len(req.body) > dispatch.api.max_body_bytes:
            raise RequestTooLarge(dispatch.api.max_body_bytes)
        match = dispatch.table.match(req.method, dispatch.path)
        if match is None:
            if ctx.http_api:
                raise NotFound()
            raise self._missing_token(req)
        ctx.match = match
        api = dispatch.api
        # Like a custom-domain base-path mapping, the event's `path` includes the base path; it
        # keeps a trailing slash and double slashes exactly as sent (§2.1).
        event_path = req.raw_path[len(dispatch.stage_prefix) :] or "/"
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
            # AWS tries to parse any Authorization header as SigV4 before answering 403 (§0.4).
            digest = base64.b64encode(hashlib.sha256(auth.encode()).digest()).decode()
            return IncompleteSignature(
                "Invalid key=value pair (missing equal-sign) in Authorization header "
                f"(hashed with SHA-256 and encoded with Base64): '{digest}'."
            )
        return MissingAuthenticationToken()


class IntegrateStage:
    """Call the route's integration. Integrations enforce their own timeouts (504)."""

    def __init__(self, integrations: Mapping[int, Integration]) -> None:
        self._integrations = integrations

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        assert ctx.match is not None and ctx.info is not None  # RouteStage ran
        integration = self._integrations.get(id(ctx.match.route))
        if integration is None:
            raise ApiConfigurationError()
        return await integration.invoke(ctx.info)


def default_stages(
    dispatcher: ApiDispatcher,
    config: GatewayConfig,
    integrations: Mapping[int, Integration],
    extra: Sequence[Stage] = (),
) -> list[Stage]:
    """The stage list, in API Gateway's order (see the module docstring).

    ``extra``: stages that run between routing and the integration, in the given order (the
    throttle stage, :class:`server.stages.throttle.ThrottleStage`, which does store I/O and so is
    passed in by :mod:`server.app` rather than imported here).
    """
    return [
        RouteStage(dispatcher, config),
        *extra,
        IntegrateStage(integrations),
    ]


AccessLine = Callable[[str, str, int, float, str], None]  # method, path, status, latency ms, target


class Gateway:
    """Runs the stage list for one request and renders every failure in one place.

    ``access``: called once per answered request (the console's access line), or ``None``.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        clock: Callable[[], float] = time.time,
        access: AccessLine | None = None,
    ) -> None:
        self._stages = tuple(stages)
        self._clock = clock
        self._access = access

    async def handle(self, request: HttpRequest) -> HttpResponse:
        started = self._clock()
        ctx = RequestContext(
            request=request,
            request_id=new_request_uuid(),
            extended_request_id=new_message_id(),
            now_ms=int(started * 1000),
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
            response = render_error(error, http_api=ctx.http_api)
        except Exception:
            # A bug, not a client error: log it and answer like AWS's internal failure.
            log.exception("unexpected error handling %s %s", request.method, request.raw_path)
            response = render_error(ApiConfigurationError(), http_api=ctx.http_api)
        if ctx.response_headers:
            response.headers.extend(ctx.response_headers)
        add_request_headers(
            response,
            request_id=ctx.request_id,
            extended_request_id=ctx.extended_request_id,
            http_api=ctx.http_api,
        )
        if self._access is not None:
            target = "-"
            if ctx.match is not None:
                integration = ctx.match.route.integration
                target = integration.function_name or integration.type.value
            self._access(
                request.method, request.raw_path, response.status, (self._clock() - started) * 1000, target
            )
        return response

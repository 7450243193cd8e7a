"""The ``transform_request`` phase (reference §7.2, §7.4): passthrough behaviour, request
templates and parameter mapping of non-proxy integrations (HTTP, MOCK) on REST APIs.

Built by :mod:`server.app` only when some route needs it; templates are compiled here, once. The
response side wraps the route's integration (:func:`wrap_integrations`), since ``integrate``
answers.
"""

from __future__ import annotations

from collections.abc import Mapping

from routes.integrations.base import Integration
from server.config.model import ApiKind, GatewayConfig, IntegrationConfig, IntegrationType
from server.events import RequestInfo
from server.messages import HttpResponse
from server.pipeline import RequestContext
from server.transform.http_api import HttpApiRequestMapping, HttpApiResponseMapping
from server.transform.request import RequestTransform
from server.transform.response import TransformingIntegration

__all__ = ["TransformRequestStage", "wrap_integrations"]

_NON_PROXY = (IntegrationType.HTTP, IntegrationType.MOCK, IntegrationType.PYTHON)


def _non_proxy(integration: IntegrationConfig) -> bool:
    if integration.type is IntegrationType.PYTHON:
        return integration.custom
    return integration.type in _NON_PROXY


class TransformRequestStage:
    def __init__(self, config: GatewayConfig) -> None:
        self._routes: dict[int, RequestTransform | HttpApiRequestMapping] = {}
        for api in config.apis:
            if api.kind is ApiKind.HTTP:
                for route in api.routes:
                    if route.integration.request_parameters:
                        self._routes[id(route)] = HttpApiRequestMapping(route.integration.request_parameters)
                continue
            if api.kind is not ApiKind.REST:
                continue
            for route in api.routes:
                integration = route.integration
                if _non_proxy(integration) and (
                    integration.request_templates
                    or integration.request_parameters
                    or integration.content_handling
                    or integration.passthrough != "WHEN_NO_MATCH"
                ):
                    self._routes[id(route)] = RequestTransform(integration)

    def __bool__(self) -> bool:
        return bool(self._routes)

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        assert ctx.match is not None and ctx.info is not None  # RouteStage ran
        transform = self._routes.get(id(ctx.match.route))
        if transform is not None:
            ctx.info = transform.apply(ctx.info)
        return None


def wrap_integrations(
    config: GatewayConfig, integrations: Mapping[int, Integration]
) -> dict[int, Integration]:
    """Each REST route with integration responses (or a templated MOCK) gets its integration
    wrapped by :class:`TransformingIntegration`; the rest are returned as they are."""
    wrapped = dict(integrations)
    for api in config.apis:
        if api.kind is ApiKind.HTTP:
            for route in api.routes:
                if route.integration.response_mapping:
                    mapping = HttpApiResponseMapping(route.integration.response_mapping)
                    wrapped[id(route)] = MappedIntegration(integrations[id(route)], mapping)
            continue
        if api.kind is not ApiKind.REST:
            continue
        for route in api.routes:
            integration = route.integration
            if _non_proxy(integration) and (
                integration.custom
                or integration.responses
                or (integration.type is IntegrationType.MOCK and integration.request_templates)
            ):
                wrapped[id(route)] = TransformingIntegration(integrations[id(route)], integration)
    return wrapped


class MappedIntegration:
    """An HTTP API route's integration with its response parameter mapping applied."""

    __slots__ = ("_inner", "_mapping")

    def __init__(self, inner: Integration, mapping: HttpApiResponseMapping) -> None:
        self._inner = inner
        self._mapping = mapping

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        return self._mapping.apply(info, await self._inner.invoke(info))

    async def close(self) -> None:
        await self._inner.close()

"""The ``validate`` phase (reference §7.1): required parameters, then the body's model.

Built by :mod:`server.app` only when some REST/HTTP route has a validator; a route without one
costs one dict miss. The checks themselves are the pure :class:`server.validation.RouteValidator`.
"""

from __future__ import annotations

from server.config.model import ApiKind, GatewayConfig
from server.messages import HttpResponse
from server.pipeline import RequestContext
from server.validation import RouteValidator, model_registry

__all__ = ["ValidateStage"]


class ValidateStage:
    def __init__(self, config: GatewayConfig) -> None:
        self._routes: dict[int, RouteValidator] = {}
        for api in config.apis:
            if api.kind is ApiKind.WEBSOCKET:
                continue
            registry = model_registry(api.models)
            for route in api.routes:
                if route.validation is not None:
                    self._routes[id(route)] = RouteValidator(route.validation, registry, api.models)

    def __bool__(self) -> bool:
        return bool(self._routes)

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        assert ctx.match is not None and ctx.info is not None  # RouteStage ran
        validator = self._routes.get(id(ctx.match.route))
        if validator is not None:
            validator.check(ctx.request, ctx.info.path_parameters)
        return None

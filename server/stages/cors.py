"""The ``cors`` phase (HTTP APIs with a CORS configuration; reference §9).

It runs first, before routing: a preflight is answered even where no ``OPTIONS`` route exists and
before any authorizer (as AWS does). For other requests carrying ``Origin`` it leaves the CORS
headers in the context; the runner drops the backend's own CORS headers and adds these.
Built by :mod:`server.app` only when some HTTP API has CORS; a request without ``Origin`` then
costs one header scan.
"""

from __future__ import annotations

from routes.dispatch import ApiDispatcher
from server.config.model import ApiKind, GatewayConfig
from server.cors import CorsPolicy
from server.messages import HttpResponse
from server.pipeline import RequestContext

__all__ = ["CorsStage"]


class CorsStage:
    def __init__(self, dispatcher: ApiDispatcher, config: GatewayConfig) -> None:
        self._dispatcher = dispatcher
        self._policies = {
            api.id: CorsPolicy(api.cors)
            for api in config.apis
            if api.kind is ApiKind.HTTP and api.cors is not None
        }

    def __bool__(self) -> bool:
        return bool(self._policies)

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        req = ctx.request
        origin = req.header("origin")
        if origin is None:
            return None
        dispatch = self._dispatcher.resolve(req.raw_path)
        if dispatch is None:
            return None
        policy = self._policies.get(dispatch.api.id)
        if policy is None:
            return None
        ctx.http_api = True
        if req.method == "OPTIONS":
            requested = req.header("access-control-request-method")
            if requested is not None:
                return policy.preflight(origin, requested)
        ctx.cors_headers = policy.response_headers(origin)
        return None

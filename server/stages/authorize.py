"""The ``authorize`` phase (aws-contract.md §5): runs after routing, before throttling.

For a route that declares an authorizer, build the method ARN, ask the route's authorizer, and
record what it returns where later phases and the event builders read it: the event's
``requestContext.authorizer`` and ``identity`` fields (:class:`server.events.RequestInfo`) and
the result itself (``ctx.auth``: the throttle phase reads ``usage_identifier_key`` for
``apiKeySource: AUTHORIZER``). A refusal is raised as a leaf of the error tree by the authorizer
and rendered by the runner. Routes without an authorizer cost one dict lookup.
"""

from __future__ import annotations

from collections.abc import Mapping

from server.auth.base import Authorizer, AuthRequest, method_arn
from server.config.model import GatewayConfig
from server.messages import HttpResponse
from server.pipeline import RequestContext

__all__ = ["AuthorizeStage"]


class AuthorizeStage:
    def __init__(self, authorizers: Mapping[int, Authorizer], config: GatewayConfig) -> None:
        self._authorizers = authorizers
        self._region = config.region
        self._account_id = config.account_id

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        assert ctx.match is not None and ctx.info is not None and ctx.dispatch is not None  # routed
        authorizer = self._authorizers.get(id(ctx.match.route))
        if authorizer is None:
            return None
        info = ctx.info
        arn = method_arn(
            self._region, self._account_id, info.api_id, info.stage, info.request.method, ctx.dispatch.path
        )
        result = await authorizer.authorize(
            AuthRequest(
                info=info,
                kind=ctx.dispatch.api.kind,
                method_arn=arn,
                region=self._region,
                source_ip=info.request.source_ip,
            )
        )
        ctx.auth = result
        if result.authorizer is not None:
            info.authorizer = result.authorizer
        if result.identity:
            info.identity_extra = {**(info.identity_extra or {}), **result.identity}
        return None

"""The ``authorize`` phase (aws-contract.md §5): runs after routing, before throttling.

For a route that declares an authorizer, build the method ARN, ask the route's authorizer, and
record what it returns where later phases and the event builders read it: the event's
``requestContext.authorizer`` and ``identity`` fields (:class:`server.events.RequestInfo`) and
the result itself (``ctx.auth``: the throttle phase reads ``usage_identifier_key`` for
``apiKeySource: AUTHORIZER``). A refusal is raised as a leaf of the error tree by the authorizer
and rendered by the runner. Routes without an authorizer cost one dict lookup.

An API with a resource policy (:mod:`server.auth.resource_policy`) is checked here too, as AWS
orders it (aws-contract.md §5.1, §5.5): the policy's explicit denies for the caller's address first,
before any authorizer runs (a refused client never reaches a Lambda authorizer); then, without
an authorizer, the policy must explicitly allow; with ``aws_iam`` the IAM authorizer combines the
key's policy with the resource policy for the signed principal (Table A); a Lambda authorizer's
allow is enough (Table A); JWT/Cognito callers still need the policy's explicit allow. The
caller's address is the peer's, or the trusted proxies' ``X-Forwarded-For`` client
(``trustedProxies``).
"""

from __future__ import annotations

from collections.abc import Mapping

from server.auth.base import Authorizer, AuthRequest, method_arn
from server.auth.iam import INVOKE
from server.auth.policy import Decision
from server.auth.resource_policy import (
    RequestFacts,
    ResourcePolicy,
    access_denied_message,
    client_address,
    decide,
    parse_networks,
    secure_transport,
)
from server.config.model import AuthorizerType, GatewayConfig
from server.errors import AccessDenied
from server.messages import HttpRequest, HttpResponse
from server.pipeline import RequestContext, read_body

__all__ = ["AuthorizeStage"]


class AuthorizeStage:
    def __init__(self, authorizers: Mapping[int, Authorizer], config: GatewayConfig) -> None:
        self._authorizers = authorizers
        self._region = config.region
        self._account_id = config.account_id
        self._policies: dict[str, ResourcePolicy] = {
            api.id: api.resource_policy for api in config.apis if api.resource_policy is not None
        }
        self._trusted = parse_networks(config.trusted_proxies)
        # Authenticated but not authorized by the policy on their own: the resource policy must
        # also allow them (aws-contract.md §5.5, "Cognito plus resource policy").
        self._needs_allow = {
            id(route)
            for api in config.apis
            for route in api.routes
            if route.authorizer is not None
            and route.authorizer.type in (AuthorizerType.JWT, AuthorizerType.COGNITO_USER_POOLS)
        }

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        assert ctx.match is not None and ctx.info is not None and ctx.dispatch is not None  # routed
        route = ctx.match.route
        authorizer = self._authorizers.get(id(route))
        policy = self._policies.get(ctx.dispatch.api.id) if self._policies else None
        if authorizer is None and policy is None:
            return None
        info = ctx.info
        arn = method_arn(
            self._region, self._account_id, info.api_id, info.stage, info.request.method, ctx.dispatch.path
        )
        source_ip = self._client(info.request)
        if policy is not None:
            anonymous = self._facts(info.request, source_ip)
            decision = decide(policy, anonymous, INVOKE, arn)
            if decision is Decision.DENY:
                raise AccessDenied(access_denied_message(None, INVOKE, arn, explicit=True))
            if decision is not Decision.ALLOW and (authorizer is None or id(route) in self._needs_allow):
                raise AccessDenied(access_denied_message(None, INVOKE, arn, explicit=False))
            if authorizer is None:
                return None
        assert authorizer is not None
        if getattr(authorizer, "needs_body", False):
            await read_body(ctx)  # its signature covers the payload: read it before deciding
        result = await authorizer.authorize(
            AuthRequest(
                info=info,
                kind=ctx.dispatch.api.kind,
                method_arn=arn,
                region=self._region,
                source_ip=source_ip,
            )
        )
        ctx.auth = result
        if result.authorizer is not None:
            info.authorizer = result.authorizer
        if result.identity:
            info.identity_extra = {**(info.identity_extra or {}), **result.identity}
        return None

    def _client(self, request: HttpRequest) -> str:
        if not self._trusted:
            return request.source_ip
        forwarded = [value for name, value in request.headers if name.lower() == "x-forwarded-for"]
        return client_address(request.source_ip, forwarded, self._trusted)

    def _facts(self, request: HttpRequest, source_ip: str) -> RequestFacts:
        forwarded_proto = [value for name, value in request.headers if name.lower() == "x-forwarded-proto"]
        return RequestFacts(
            source_ip=source_ip,
            secure=secure_transport(request.scheme, request.source_ip, forwarded_proto, self._trusted),
            user_agent=request.header("user-agent"),
            referer=request.header("referer"),
        )

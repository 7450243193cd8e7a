"""The pipeline runner itself, without sockets: phase order, short-circuit, errors rendered in
one place, 500 on an unexpected error, unknown phase names refused."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson
import pytest

from routes.dispatch import ApiDispatcher
from routes.integrations.base import Integration
from server.auth.base import AuthRequest, AuthResult
from server.config.model import (
    ApiConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    RouteConfig,
    StageConfig,
)
from server.errors import AccessDenied, Unauthorized
from server.events import RequestInfo
from server.messages import HttpRequest, HttpResponse
from server.pipeline import PHASES, Gateway, RequestContext, default_stages
from server.stages.authorize import AuthorizeStage

AUTH = AuthorizerConfig("auth", AuthorizerType.TOKEN)
OPEN = RouteConfig("GET", "/open", IntegrationConfig(IntegrationType.MOCK))
GUARDED = RouteConfig("GET", "/pets/{id}", IntegrationConfig(IntegrationType.MOCK), authorizer=AUTH)
CONFIG = GatewayConfig(
    apis=(ApiConfig("api", "abc123", ApiKind.REST, (StageConfig("dev"),), (OPEN, GUARDED)),),
    source=Path("test.yaml"),
)


def request(path: str, **headers: str) -> HttpRequest:
    return HttpRequest("GET", path, "", tuple(headers.items()), b"", "10.0.0.1", "example.com")


class Recorder:
    def __init__(self, name: str, log: list[str], answer: HttpResponse | None = None) -> None:
        self.name, self.log, self.answer = name, log, answer

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        self.log.append(self.name)
        return self.answer


class Boom:
    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        raise KeyError("a bug")


class Echo:
    """Integration that answers with what the event builders would read."""

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        body = {"authorizer": dict(info.authorizer or {}), "identity": dict(info.identity_extra or {})}
        return HttpResponse(200, [("Content-Type", "application/json")], orjson.dumps(body))

    async def close(self) -> None:
        return None


def integrations() -> Mapping[int, Integration]:
    echo = Echo()
    return {id(OPEN): echo, id(GUARDED): echo}


def stages(**phases: object) -> Gateway:
    return Gateway(default_stages(ApiDispatcher(CONFIG), CONFIG, integrations(), **phases))  # type: ignore[arg-type]


async def test_phases_run_in_aws_order_whatever_the_argument_order() -> None:
    log: list[str] = []
    optional = [name for name in PHASES if name not in ("route", "read_body", "integrate")]
    named = {name: Recorder(name, log) for name in reversed(optional)}
    response = await stages(**named).handle(request("/dev/open"))
    assert response.status == 200
    assert log == optional


async def test_a_phase_that_answers_short_circuits_the_rest() -> None:
    log: list[str] = []
    gateway = stages(
        authorize=Recorder("authorize", log, HttpResponse(418, body=b"stop")),
        throttle=Recorder("throttle", log),
    )
    response = await gateway.handle(request("/dev/open"))
    assert (response.status, response.body, log) == (418, b"stop", ["authorize"])


async def test_unexpected_error_is_a_500_with_request_ids() -> None:
    response = await stages(throttle=Boom()).handle(request("/dev/open"))
    assert response.status == 500
    assert orjson.loads(response.body) == {"message": "Internal server error"}
    assert response.header("x-amzn-RequestId")


def test_unknown_or_fixed_phase_names_are_refused() -> None:
    for name in ("authorise", "route", "read_body", "integrate"):
        with pytest.raises(ValueError, match=name):
            stages(**{name: Recorder(name, [])})


class FakeAuthorizer:
    """Stands in for a real authorizer type: the phase's contract, not an authorizer's rules."""

    def __init__(self) -> None:
        self.seen: list[AuthRequest] = []

    async def authorize(self, req: AuthRequest) -> AuthResult:
        self.seen.append(req)
        token = req.info.request.header("Authorization")
        if token is None:
            raise Unauthorized()
        if token == "deny":
            raise AccessDenied()
        return AuthResult(authorizer={"principalId": "me", "k": "v"}, identity={"user": "me"})

    async def close(self) -> None:
        return None


async def test_authorize_phase_guards_only_routes_with_an_authorizer() -> None:
    fake = FakeAuthorizer()
    gateway = stages(authorize=AuthorizeStage({id(GUARDED): fake}, CONFIG))
    assert (await gateway.handle(request("/dev/open"))).status == 200
    assert fake.seen == []
    missing = await gateway.handle(request("/dev/pets/7"))
    assert (missing.status, orjson.loads(missing.body)) == (401, {"message": "Unauthorized"})
    denied = await gateway.handle(request("/dev/pets/7", Authorization="deny"))
    assert denied.status == 403
    assert denied.header("x-amzn-ErrorType") == "AccessDeniedException"
    allowed = await gateway.handle(request("/dev/pets/7", Authorization="ok"))
    assert orjson.loads(allowed.body) == {
        "authorizer": {"principalId": "me", "k": "v"},
        "identity": {"user": "me"},
    }
    arn = fake.seen[-1].method_arn
    assert arn == "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/GET/pets/7"
    assert fake.seen[-1].source_ip == "10.0.0.1"

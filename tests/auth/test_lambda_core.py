"""The pure pieces of Lambda authorizers (identity sources, responses, decisions), and the
authorizer with its store unreachable (a cache miss: the function decides, never an allow)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from routes.integrations.python_handler import HandlerInvokers
from server.auth.base import AuthRequest
from server.auth.lambda_authorizer import LambdaAuthorizer
from server.auth.lambda_input import identity_values, parse_identity_source
from server.auth.lambda_output import EXPLICIT_DENY, MalformedResult, decide, parse_verdict, stringify
from server.config.model import (
    ApiConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    IntegrationConfig,
    IntegrationType,
    Isolation,
    StageConfig,
    frozen_map,
)
from server.errors import AccessDenied, Unauthorized
from server.events import RequestInfo
from server.messages import HttpRequest
from server.store.redis import RedisStore
from tests.auth.conftest import HANDLERS, InvocationLog
from tests.redis_fixture import free_port

ARN = "arn:aws:execute-api:us-east-1:123456789012:api/dev/GET/pets/1"


def info(headers: tuple[tuple[str, str], ...] = (), query: str = "") -> RequestInfo:
    request = HttpRequest("GET", "/dev/pets/1", query, headers, b"", "10.0.0.1", "h")
    return RequestInfo(
        request=request,
        api_id="api",
        account_id="123456789012",
        stage="dev",
        stage_prefix="/dev",
        path="/pets/1",
        resource="/pets/{id}",
        route_key="GET /pets/{id}",
        path_parameters={"id": "1"},
        stage_variables=frozen_map({"v": "x"}),
        request_id="r",
        extended_request_id="e",
        now_ms=0,
    )


def policy(effect: str, resource: str, action: str = "execute-api:Invoke") -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": action, "Resource": resource}],
    }


@pytest.mark.parametrize(
    ("value", "text"), [(True, "true"), (False, "false"), (7, "7"), (1.5, "1.5"), (2.0, "2.0"), ("s", "s")]
)
def test_context_values_are_stringified(value: object, text: str) -> None:
    assert stringify(value) == text


def test_identity_sources_per_api_kind() -> None:
    assert parse_identity_source("method.request.header.X-User", ApiKind.REST).name == "x-user"
    assert parse_identity_source("$request.querystring.Tenant", ApiKind.HTTP).name == "Tenant"
    assert parse_identity_source("route.request.header.Auth", ApiKind.WEBSOCKET).where == "header"
    assert parse_identity_source("$context.routeKey", ApiKind.HTTP).where == "context"
    for text, kind in (
        ("$request.header.A", ApiKind.REST),
        ("method.request.header.A", ApiKind.HTTP),
        ("method.request.path.id", ApiKind.REST),  # path parameters cannot be identity sources
        ("context.nope", ApiKind.REST),
    ):
        with pytest.raises(ValueError):
            parse_identity_source(text, kind)


def test_identity_values() -> None:
    sources = [
        parse_identity_source(text, ApiKind.REST)
        for text in (
            "method.request.header.Authorization",
            "method.request.querystring.t",
            "stageVariables.v",
        )
    ]
    request = info((("authorization", "a"), ("X", "y")), "t=1&t=2&T=3")
    assert identity_values(sources, request, ApiKind.REST) == ("a", "2", "x")  # last query value (REST)
    assert identity_values(sources, info((("Authorization", "a"),), "t="), ApiKind.REST) is None
    assert identity_values(sources, info((), "t=1"), ApiKind.REST) is None
    http = [parse_identity_source("$request.header.A", ApiKind.HTTP)]
    assert identity_values(http, info((("a", "1"), ("A", "2"))), ApiKind.HTTP) == ("1,2",)
    route = [parse_identity_source("$context.routeKey", ApiKind.HTTP)]
    assert identity_values(route, info(), ApiKind.HTTP) == ("GET /pets/{id}",)


@pytest.mark.parametrize(
    ("raw", "kind", "simple"),
    [
        ([], ApiKind.REST, False),
        ({"policyDocument": policy("Allow", "*")}, ApiKind.REST, False),  # no principalId
        ({"principalId": "u"}, ApiKind.REST, False),  # no policy
        ({"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Maybe"}]}}, ApiKind.REST, False),
        (
            {"principalId": "u", "policyDocument": policy("Allow", "*"), "context": {"a": [1]}},
            ApiKind.REST,
            False,
        ),
        (
            {"principalId": "u", "policyDocument": policy("Allow", "*"), "usageIdentifierKey": 1},
            ApiKind.REST,
            False,
        ),
        ({"isAuthorized": "true"}, ApiKind.HTTP, True),
        ({"isAuthorized": True, "context": "x"}, ApiKind.HTTP, True),
    ],
)
def test_malformed_responses(raw: object, kind: ApiKind, simple: bool) -> None:
    with pytest.raises(MalformedResult):
        parse_verdict(raw, kind, simple=simple)


def test_decisions() -> None:
    allow_get = parse_verdict(
        {"principalId": "u", "policyDocument": policy("Allow", "arn:aws:execute-api:*:*:api/*/GET/*")},
        ApiKind.REST,
        simple=False,
    )
    result = decide(allow_get, ARN, ApiKind.REST, 3)
    assert result.authorizer == {"principalId": "u", "integrationLatency": 3}
    with pytest.raises(AccessDenied) as denied:
        decide(allow_get, ARN.replace("/GET/", "/POST/"), ApiKind.REST, 0)
    assert denied.value.message == "User is not authorized to access this resource"
    both = {
        "principalId": "u",
        "policyDocument": {
            "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {
                    "Effect": "Deny",
                    "Action": "execute-api:*",
                    "Resource": "arn:aws:execute-api:*:*:api/dev/*",
                },
            ]
        },
    }
    with pytest.raises(AccessDenied) as denied:
        decide(parse_verdict(both, ApiKind.REST, simple=False), ARN, ApiKind.REST, 0)
    assert denied.value.message == EXPLICIT_DENY  # an explicit deny wins over the allow
    with pytest.raises(AccessDenied) as denied:
        decide(parse_verdict(both, ApiKind.HTTP, simple=False), ARN, ApiKind.HTTP, 0)
    assert denied.value.message == AccessDenied.default_message  # rendered {"message":"Forbidden"}
    simple = parse_verdict({"isAuthorized": True, "context": {"a": [1]}}, ApiKind.HTTP, simple=True)
    assert decide(simple, ARN, ApiKind.HTTP, 0).authorizer == {"lambda": {"a": [1]}}


@pytest.fixture
async def invokers() -> AsyncIterator[HandlerInvokers]:
    registry = HandlerInvokers(region="us-east-1", account_id="123456789012")
    yield registry
    await registry.close_all()


async def test_unreachable_store_is_a_cache_miss(invokers: HandlerInvokers, auth_log: InvocationLog) -> None:
    config = AuthorizerConfig(
        name="tok",
        type=AuthorizerType.TOKEN,
        function=IntegrationConfig(
            type=IntegrationType.PYTHON,
            handler="authorizers.policy",
            code_dir=HANDLERS,
            isolation=Isolation.INPROCESS,
        ),
        identity_sources=("method.request.header.Authorization",),
    )
    api = ApiConfig("pets", "api", ApiKind.REST, (StageConfig("dev"),), ())
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, connect_timeout=0.5)
    try:
        assert config.function is not None
        authorizer = LambdaAuthorizer(config, api, invokers.get(config.function), store)
        for token in ("allow", "allow"):
            request = AuthRequest(info((("Authorization", token),)), ApiKind.REST, ARN, "us-east-1")
            assert (await authorizer.authorize(request)).principal_id == "user-allow"
        assert len(auth_log) == 2  # nothing cached, nothing assumed: the function decided twice
        with pytest.raises(AccessDenied):
            await authorizer.authorize(AuthRequest(info((("Authorization", "deny"),)), ApiKind.REST, ARN, ""))
        with pytest.raises(Unauthorized):
            await authorizer.authorize(AuthRequest(info(), ApiKind.REST, ARN, ""))
    finally:
        await store.close()

"""REST Lambda authorizers end to end (reference §5.1, §0.4): a real gateway on port 0, real
handlers (in process and in worker processes), the aiohttp client."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from tests.auth.conftest import InvocationLog, write_config

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

CONFIG = """
portway: 1
accountId: "111122223333"
apis:
  - name: pets
    id: petsapi
    codeDir: CODE
    defaults: {isolation: inprocess}
    authorizers:
      tok: {type: token, function: authorizers.policy, resultTtlInSeconds: 0}
      cached: {type: token, function: authorizers.policy}
      req:
        type: request
        function: {python: authorizers.policy, isolation: process, timeout: 1000}
        identitySource: [method.request.header.Authorization, method.request.querystring.q]
        resultTtlInSeconds: 0
      valid:
        type: token
        function: authorizers.policy
        identityValidationExpression: "[a-z]+"
        resultTtlInSeconds: 0
    routes:
      GET /open: authorizers.echo
      GET /tok/{id}: {python: authorizers.echo, authorizer: tok}
      GET /cached/a: {python: authorizers.echo, authorizer: cached}
      POST /cached/a: {python: authorizers.echo, authorizer: cached}
      GET /req: {python: authorizers.echo, authorizer: req}
      GET /valid: {python: authorizers.echo, authorizer: valid}
"""


@pytest.fixture
async def client(aiohttp_client: Client, tmp_path: Path, auth_log: InvocationLog) -> TestClient[Any, Any]:
    # AUTH_LOG reaches worker processes only when passed through (they get Lambda's environment).
    return await aiohttp_client(create_app(write_config(tmp_path, CONFIG), pass_env=("AUTH_LOG",)))


async def call(client: TestClient[Any, Any], path: str, token: str | None, method: str = "GET") -> Any:
    headers = {"Authorization": token} if token is not None else {}
    async with client.request(method, path, headers=headers) as response:
        return response.status, response.headers, await response.read()


async def test_allow_passes_context_stringified_with_principal_and_latency(
    client: TestClient[Any, Any], auth_log: InvocationLog
) -> None:
    status, _, body = await call(client, "/dev/tok/7?x=1", "allow")
    assert status == 200
    authorizer = json.loads(body)["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "user-allow"
    assert isinstance(authorizer["integrationLatency"], int)
    assert {k: authorizer[k] for k in ("text", "number", "flag", "ratio")} == {
        "text": "hello",
        "number": "7",
        "flag": "true",
        "ratio": "1.5",
    }
    (event,) = auth_log.events()
    # TOKEN input exactly as §5.1: the whole header value and the actual path in the ARN.
    assert event == {
        "type": "TOKEN",
        "authorizationToken": "allow",
        "methodArn": "arn:aws:execute-api:us-east-1:111122223333:petsapi/dev/GET/tok/7",
    }


async def test_missing_identity_is_401_without_invoking(
    client: TestClient[Any, Any], auth_log: InvocationLog
) -> None:
    for token in (None, ""):
        status, headers, body = await call(client, "/dev/tok/1", token)
        assert (status, body) == (401, b'{"message":"Unauthorized"}')
        assert headers["x-amzn-ErrorType"] == "UnauthorizedException"
    assert len(auth_log) == 0


@pytest.mark.parametrize(
    ("token", "status", "body", "error_type"),
    [
        ("unauthorized", 401, b'{"message":"Unauthorized"}', "UnauthorizedException"),
        (
            "deny",
            403,
            b'{"Message":"User is not authorized to access this resource with an explicit deny"}',
            "AccessDeniedException",
        ),
        (
            "none",
            403,
            b'{"Message":"User is not authorized to access this resource"}',
            "AccessDeniedException",
        ),
        ("crash", 500, b'{"message":null}', "AuthorizerConfigurationException"),
        ("malformed", 500, b'{"message":null}', "AuthorizerConfigurationException"),
        ("badcontext", 500, b'{"message":null}', "AuthorizerConfigurationException"),
    ],
)
async def test_outcomes(
    client: TestClient[Any, Any], token: str, status: int, body: bytes, error_type: str
) -> None:
    got_status, headers, got_body = await call(client, "/dev/tok/1", token)
    assert (got_status, got_body) == (status, body)
    assert headers["x-amzn-ErrorType"] == error_type
    assert "x-amzn-RequestId" in headers


async def test_open_route_is_not_authorized(client: TestClient[Any, Any], auth_log: InvocationLog) -> None:
    status, _, body = await call(client, "/dev/open", None)
    assert status == 200 and "authorizer" not in json.loads(body)["requestContext"]
    assert len(auth_log) == 0


async def test_cache_skips_the_function_and_reevaluates_the_policy_per_method(
    client: TestClient[Any, Any], auth_log: InvocationLog
) -> None:
    # "exact" allows only the ARN it was asked about: GET is allowed and cached...
    assert (await call(client, "/dev/cached/a", "exact"))[0] == 200
    status, _, body = await call(client, "/dev/cached/a", "exact")
    assert status == 200
    assert json.loads(body)["requestContext"]["authorizer"]["integrationLatency"] == 0
    # ...and the cached policy denies POST on the same path (the classic pitfall, §5.1).
    status, _, body = await call(client, "/dev/cached/a", "exact", method="POST")
    assert (status, body) == (403, b'{"Message":"User is not authorized to access this resource"}')
    assert len(auth_log) == 1
    # Another identity is another cache entry.
    assert (await call(client, "/dev/cached/a", "allow", method="POST"))[0] == 200
    assert len(auth_log) == 2


async def test_ttl_zero_invokes_every_time(client: TestClient[Any, Any], auth_log: InvocationLog) -> None:
    for _ in range(3):
        assert (await call(client, "/dev/tok/1", "allow"))[0] == 200
    assert len(auth_log) == 3


async def test_identity_validation_expression(client: TestClient[Any, Any], auth_log: InvocationLog) -> None:
    assert (await call(client, "/dev/valid", "Bearer x"))[0] == 401
    assert len(auth_log) == 0
    assert (await call(client, "/dev/valid", "allow"))[0] == 200
    assert len(auth_log) == 1


async def test_request_authorizer_in_a_worker_process(
    client: TestClient[Any, Any], auth_log: InvocationLog
) -> None:
    async with client.get("/dev/req?q=1", headers={"Authorization": "allow"}) as response:
        assert response.status == 200
    # A missing query identity source: 401 without invoking.
    async with client.get("/dev/req", headers={"Authorization": "allow"}) as response:
        assert response.status == 401
    (event,) = auth_log.events()
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:us-east-1:111122223333:petsapi/dev/GET/req"
    assert event["queryStringParameters"] == {"q": "1"}
    assert event["headers"]["Authorization"] == "allow"
    assert event["requestContext"]["stage"] == "dev" and "body" not in event
    assert event["stageVariables"] is None and event["resource"] == "/req"


async def test_timeout_is_500(client: TestClient[Any, Any]) -> None:
    async with client.get("/dev/req?q=1", headers={"Authorization": "slow"}) as response:
        assert response.status == 500
        assert response.headers["x-amzn-ErrorType"] == "AuthorizerConfigurationException"
    async with client.get("/dev/req?q=1", headers={"Authorization": "crash"}) as response:
        assert response.status == 500

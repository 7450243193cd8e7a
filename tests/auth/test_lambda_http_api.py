"""HTTP API Lambda authorizers end to end (reference §5.2, §0.5): payload 1.0 and 2.0, simple
responses and IAM policies, context under ``requestContext.authorizer.lambda``."""

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
  - name: shop
    id: shopapi
    type: http
    codeDir: CODE
    defaults: {isolation: inprocess}
    authorizers:
      simple:
        type: request
        function: authorizers.simple
        identitySource: $request.header.Authorization
        simpleResponses: true
        resultTtlInSeconds: 0
      iam2:
        type: request
        function: authorizers.policy
        identitySource: [$request.header.Authorization, $request.querystring.tenant]
        resultTtlInSeconds: 0
      iam1:
        type: request
        function: authorizers.policy
        identitySource: $request.header.Authorization
        payloadFormat: "1.0"
      cached:
        type: request
        function: authorizers.simple
        identitySource: $request.header.Authorization
        simpleResponses: true
    routes:
      GET /simple: {python: authorizers.echo, authorizer: simple}
      GET /iam2/{id}: {python: authorizers.echo, authorizer: iam2}
      GET /iam1: {python: authorizers.echo, authorizer: iam1, payloadFormat: "1.0"}
      GET /cached/a: {python: authorizers.echo, authorizer: cached}
      GET /cached/b: {python: authorizers.echo, authorizer: cached}
"""


@pytest.fixture
async def client(aiohttp_client: Client, tmp_path: Path, auth_log: InvocationLog) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(write_config(tmp_path, CONFIG)))


async def get(client: TestClient[Any, Any], path: str, token: str | None) -> tuple[int, Any, bytes]:
    headers = {"Authorization": token} if token is not None else {}
    async with client.get(path, headers=headers) as response:
        return response.status, response.headers, await response.read()


async def test_simple_response_allow_puts_context_under_lambda(
    client: TestClient[Any, Any], auth_log: InvocationLog
) -> None:
    status, headers, body = await get(client, "/simple?x=1", "allow")
    assert status == 200 and "apigw-requestid" in headers
    event = json.loads(body)
    # Simple-response context may hold any JSON; it is passed as it is.
    assert event["requestContext"]["authorizer"] == {"lambda": {"user": "u1", "roles": ["a", "b"], "n": 1}}
    (seen,) = auth_log.events()
    assert seen["version"] == "2.0" and seen["type"] == "REQUEST"
    assert seen["routeArn"] == "arn:aws:execute-api:us-east-1:111122223333:shopapi/$default/GET/simple"
    assert seen["identitySource"] == ["allow"]
    assert seen["routeKey"] == "GET /simple" and seen["rawQueryString"] == "x=1"
    assert seen["headers"]["authorization"] == "allow" and "body" not in seen


@pytest.mark.parametrize(
    ("path", "token", "status", "body"),
    [
        ("/simple", "deny", 403, b'{"message":"Forbidden"}'),
        ("/simple", None, 401, b'{"message":"Unauthorized"}'),
        ("/simple", "malformed", 500, b'{"message":"Internal Server Error"}'),
        ("/iam2/1?tenant=t", "deny", 403, b'{"message":"Forbidden"}'),
        ("/iam2/1?tenant=t", "none", 403, b'{"message":"Forbidden"}'),
        ("/iam2/1?tenant=t", "unauthorized", 401, b'{"message":"Unauthorized"}'),
        ("/iam2/1?tenant=t", "crash", 500, b'{"message":"Internal Server Error"}'),
        ("/iam2/1", "allow", 401, b'{"message":"Unauthorized"}'),  # no tenant: not invoked
    ],
)
async def test_outcomes(
    client: TestClient[Any, Any], path: str, token: str | None, status: int, body: bytes
) -> None:
    got_status, headers, got_body = await get(client, path, token)
    assert (got_status, got_body) == (status, body)
    assert "x-amzn-ErrorType" not in headers  # HTTP APIs send none


async def test_iam_policy_payload_2(client: TestClient[Any, Any], auth_log: InvocationLog) -> None:
    status, _, body = await get(client, "/iam2/9?tenant=acme", "allow")
    assert status == 200
    context = json.loads(body)["requestContext"]["authorizer"]["lambda"]
    assert context == {"text": "hello", "number": 7, "flag": True, "ratio": 1.5}
    (seen,) = auth_log.events()
    assert seen["identitySource"] == ["allow", "acme"]
    assert seen["pathParameters"] == {"id": "9"}


async def test_payload_1(client: TestClient[Any, Any], auth_log: InvocationLog) -> None:
    status, _, body = await get(client, "/iam1", "allow")
    assert status == 200
    assert json.loads(body)["requestContext"]["authorizer"]["lambda"]["text"] == "hello"
    (seen,) = auth_log.events()
    assert seen["version"] == "1.0" and seen["type"] == "REQUEST"
    assert seen["identitySource"] == "allow" and seen["authorizationToken"] == "allow"
    assert seen["methodArn"].endswith("shopapi/$default/GET/iam1")
    assert seen["httpMethod"] == "GET" and seen["resource"] == "/iam1"


async def test_cached_result_applies_to_every_route(
    client: TestClient[Any, Any], auth_log: InvocationLog
) -> None:
    assert (await get(client, "/cached/a", "allow"))[0] == 200
    assert (await get(client, "/cached/b", "allow"))[0] == 200
    assert (await get(client, "/cached/a", "deny"))[0] == 403
    assert (await get(client, "/cached/b", "deny"))[0] == 403
    assert len(auth_log) == 2

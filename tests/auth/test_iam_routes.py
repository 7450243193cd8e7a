"""aws_iam routes end to end: a real gateway on port 0, requests signed by botocore (§5.5)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from server.app import create_app
from server.auth.policy import parse_policy
from server.config.load import load_config
from server.config.model import (
    ApiConfig,
    ApiKeyConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    GatewayConfig,
    IamCredentialConfig,
    PlanStage,
    RouteConfig,
    StageConfig,
    UsagePlanConfig,
)
from tests.auth.signing import KEY_ID, SECRET, sign
from tests.server.test_gateway_rest import python

IAM = AuthorizerConfig("aws_iam", AuthorizerType.AWS_IAM)
ACCOUNT = "123456789012"
POLICY = parse_policy(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": "arn:aws:execute-api:*:*:petsid/*/*/pets*",
            },
            {
                "Effect": "Deny",
                "Action": "execute-api:*",
                "Resource": "arn:aws:execute-api:*:*:petsid/dev/DELETE/*",
            },
        ],
    }
)
ALICE = IamCredentialConfig(
    KEY_ID, POLICY, secret_access_key=SECRET, user="AIDAALICE", arn=f"arn:aws:iam::{ACCOUNT}:user/alice"
)


def iam_route(key: str, kind: ApiKind = ApiKind.REST) -> RouteConfig:
    method, _, path = key.partition(" ")
    payload = "2.0" if kind is ApiKind.HTTP else "1.0"
    return RouteConfig(method=method, path=path, integration=python("echo", payload=payload), authorizer=IAM)


def apis() -> tuple[ApiConfig, ...]:
    rest = ApiConfig(
        name="pets",
        id="petsid",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"),),
        routes=(
            iam_route("GET /pets"),
            iam_route("POST /pets"),
            iam_route("DELETE /pets/{id}"),
            iam_route("GET /admin"),
            RouteConfig(method="GET", path="/open", integration=python("echo")),
        ),
    )
    http = ApiConfig(
        name="pets-http",
        id="httpid",
        kind=ApiKind.HTTP,
        stages=(StageConfig("$default"),),
        routes=(iam_route("GET /things", ApiKind.HTTP),),
    )
    return rest, http


Start = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[TestServer] = []

    async def run(config: GatewayConfig) -> TestServer:
        server = TestServer(create_app(config), port=0)
        servers.append(server)
        await server.start_server()
        return server

    yield run
    for server in servers:
        await server.close()


async def send(
    method: str, url: str, headers: list[tuple[str, str]], body: bytes = b""
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, URL(url, encoded=True), headers=headers, data=body or None) as r,
    ):
        text = await r.text()
        return r.status, dict(r.headers), json.loads(text) if text else None


@pytest.fixture
async def gateway(start: Start) -> str:
    server = await start(GatewayConfig(apis=apis(), iam_credentials=(ALICE,)))
    return f"http://127.0.0.1:{server.port}"


async def test_signed_request_reaches_the_integration_with_the_iam_identity(gateway: str) -> None:
    url, headers = sign("GET", f"{gateway}/dev/pets?kind=dog")
    status, _, body = await send("GET", url, headers)
    assert status == 200
    identity = body["event"]["requestContext"]["identity"]
    assert {k: identity[k] for k in ("accessKey", "accountId", "caller", "user", "userArn")} == {
        "accessKey": KEY_ID,
        "accountId": ACCOUNT,
        "caller": "AIDAALICE",
        "user": "AIDAALICE",
        "userArn": f"arn:aws:iam::{ACCOUNT}:user/alice",
    }
    assert identity["sourceIp"] == "127.0.0.1"


async def test_presigned_url_works(gateway: str) -> None:
    url, headers = sign("GET", f"{gateway}/dev/pets", presign=True, expires=60)
    status, _, _ = await send("GET", url, headers)
    assert status == 200


async def test_signed_body(gateway: str) -> None:
    body = b'{"name": "rex"}'
    url, headers = sign(
        "POST", f"{gateway}/dev/pets", body=body, headers={"Content-Type": "application/json"}
    )
    assert (await send("POST", url, headers, body))[0] == 200
    status, response_headers, answer = await send("POST", url, headers, b'{"name": "evil"}')
    assert status == 403
    assert response_headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert answer["message"].startswith("The request signature we calculated does not match")


async def test_unsigned_request_is_missing_authentication_token(gateway: str) -> None:
    status, headers, body = await send("GET", f"{gateway}/dev/pets", [])
    assert (status, body) == (403, {"message": "Missing Authentication Token"})
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    # Routes without aws_iam are not affected.
    assert (await send("GET", f"{gateway}/dev/open", []))[0] == 200


@pytest.mark.parametrize(
    ("change", "error_type", "message"),
    [
        (
            {"key_id": "AKIDNOBODY"},
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            {"secret": "wrong"},
            "InvalidSignatureException",
            "The request signature we calculated does not match",
        ),
        (
            {"region": "eu-west-1"},
            "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'eu-west-1'. ",
        ),
        ({"clock_offset_s": -360.0}, "InvalidSignatureException", "Signature expired: "),
    ],
    ids=["wrong-key", "wrong-secret", "wrong-region", "replay-outside-skew"],
)
async def test_bad_signatures_get_aws_403s(
    gateway: str, change: dict[str, Any], error_type: str, message: str
) -> None:
    url, headers = sign("GET", f"{gateway}/dev/pets", **change)
    status, response_headers, body = await send("GET", url, headers)
    assert status == 403
    assert response_headers["x-amzn-ErrorType"] == error_type
    assert body["message"].startswith(message)


async def test_the_keys_policy_decides(gateway: str) -> None:
    url, headers = sign("GET", f"{gateway}/dev/admin")
    status, response_headers, body = await send("GET", url, headers)
    assert status == 403 and response_headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert body == {
        "Message": f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: "
        "execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:********9012:petsid/dev/GET/admin"
    }
    url, headers = sign("DELETE", f"{gateway}/dev/pets/1")
    status, _, body = await send("DELETE", url, headers)
    assert status == 403 and body["Message"].endswith("/dev/DELETE/pets/1 with an explicit deny")


async def test_http_api_iam_caller_in_the_2_0_event(gateway: str) -> None:
    url, headers = sign("GET", f"{gateway}/things")
    # The key's policy names the REST API only.
    assert (await send("GET", url, headers))[0] == 403
    status, response_headers, body = await send("GET", f"{gateway}/things", [])
    assert (status, body) == (403, {"message": "Forbidden"}) and "x-amzn-ErrorType" not in response_headers


async def test_http_api_allowed_caller(start: Start) -> None:
    anything = replace(
        ALICE, policy=parse_policy({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
    )
    server = await start(GatewayConfig(apis=apis(), iam_credentials=(anything,)))
    url, headers = sign("GET", f"http://127.0.0.1:{server.port}/things")
    status, _, body = await send("GET", url, headers)
    assert status == 200
    assert body["event"]["requestContext"]["authorizer"]["iam"] == {
        "accessKey": KEY_ID,
        "accountId": ACCOUNT,
        "callerId": "AIDAALICE",
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{ACCOUNT}:user/alice",
        "userId": "AIDAALICE",
    }


async def test_session_token_credentials(start: Start) -> None:
    temporary = replace(ALICE, access_key_id="ASIATEMP", session_token="token-1")
    server = await start(GatewayConfig(apis=apis(), iam_credentials=(temporary,)))
    url, headers = sign("GET", f"http://127.0.0.1:{server.port}/dev/pets", key_id="ASIATEMP", token="token-1")
    assert (await send("GET", url, headers))[0] == 200
    url, headers = sign("GET", f"http://127.0.0.1:{server.port}/dev/pets", key_id="ASIATEMP", token="token-2")
    status, response_headers, _ = await send("GET", url, headers)
    assert status == 403 and response_headers["x-amzn-ErrorType"] == "UnrecognizedClientException"


async def test_serverless_yml_aws_iam_with_secret_from_the_environment(
    start: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "handler.py").write_text(
        "def f(event, context):\n    return {'statusCode': 200, 'body': '{}'}\n"
    )
    (tmp_path / "serverless.yml").write_text(
        textwrap.dedent(
            f"""
            service: app
            provider: {{name: aws, stage: dev}}
            custom:
              portway:
                iam:
                  credentials:
                    - accessKeyId: {KEY_ID}
                      secretAccessKeyEnv: APP_IAM_SECRET
                      user: backend
                      policy:
                        - Effect: Allow
                          Action: execute-api:Invoke
                          Resource: arn:aws:execute-api:*:*:*/dev/GET/a
            functions:
              f:
                handler: handler.f
                events:
                  - http: {{path: a, method: get, authorizer: aws_iam}}
            """
        )
    )
    config = load_config(tmp_path / "serverless.yml")
    with pytest.raises(ValueError, match="APP_IAM_SECRET"):
        await start(config)  # the secret is not set: refuse to start
    monkeypatch.setenv("APP_IAM_SECRET", SECRET)
    server = await start(config)
    url, headers = sign("GET", f"http://127.0.0.1:{server.port}/dev/a")
    assert (await send("GET", url, headers))[0] == 200
    assert (await send("GET", f"http://127.0.0.1:{server.port}/dev/a", []))[0] == 403


async def test_iam_identity_and_api_key_identity_together(start: Start) -> None:
    keyed = replace(iam_route("GET /pets"), api_key_required=True)
    rest = replace(apis()[0], routes=(keyed,))
    value = "a-key-value-of-thirty-chars-xx"
    config = GatewayConfig(
        apis=(rest,),
        iam_credentials=(ALICE,),
        usage_plans=(UsagePlanConfig("plan", "plan", stages=(PlanStage("petsid", "dev"),)),),
        api_keys=(ApiKeyConfig("k", value=value, plans=("plan",)),),
    )
    server = await start(config)
    url, headers = sign("GET", f"http://127.0.0.1:{server.port}/dev/pets", headers={"x-api-key": value})
    status, _, body = await send("GET", url, headers)
    assert status == 200
    identity = body["event"]["requestContext"]["identity"]
    assert identity["accessKey"] == KEY_ID and identity["apiKey"] == value

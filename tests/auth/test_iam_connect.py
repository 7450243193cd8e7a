"""The AWS_IAM authorizer on a WebSocket $connect (aws-contract.md §1.8): the client signs the upgrade
GET, usually presigned in the query string. The WebSocket adapter's $connect hook builds an
AuthRequest with the method ARN ``.../{stage}/$connect``; here it is built by hand."""

from __future__ import annotations

import pytest

from server.auth.base import Authorizer, AuthRequest, method_arn
from server.auth.factory import AuthDeps, build_authorizers
from server.auth.policy import Policy, parse_policy
from server.config.model import (
    ApiConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    GatewayConfig,
    IamCredentialConfig,
    RouteConfig,
    StageConfig,
)
from server.errors import AccessDenied, GatewayError, InvalidSignature, MissingSignature
from server.events import RequestInfo
from tests.auth.signing import KEY_ID, SECRET, http_request, sign
from tests.server.test_gateway_rest import python

CONNECT_ONLY = parse_policy(
    {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": "arn:aws:execute-api:*:*:wsid/dev/$connect",
            }
        ]
    }
)
ARN = method_arn("us-east-1", "123456789012", "wsid", "dev", "", "$connect")


def authorizer(policy: Policy = CONNECT_ONLY) -> Authorizer:
    route = RouteConfig(
        method="",
        path="$connect",
        integration=python("echo"),
        authorizer=AuthorizerConfig("connect-iam", AuthorizerType.AWS_IAM),
    )
    api = ApiConfig("chat", "wsid", ApiKind.WEBSOCKET, (StageConfig("dev"),), (route,))
    config = GatewayConfig(
        apis=(api,),
        iam_credentials=(IamCredentialConfig(KEY_ID, policy, secret_access_key=SECRET),),
    )
    (built,) = build_authorizers(AuthDeps(config)).values()
    return built


def connect_request(url: str, headers: list[tuple[str, str]]) -> AuthRequest:
    request = http_request("GET", url, [*headers, ("Upgrade", "websocket"), ("Connection", "Upgrade")])
    info = RequestInfo(
        request=request,
        api_id="wsid",
        account_id="123456789012",
        stage="dev",
        stage_prefix="/dev",
        path="",
        resource="$connect",
        route_key="$connect",
        path_parameters={},
        stage_variables={},
        request_id="r",
        extended_request_id="e",
        now_ms=0,
    )
    return AuthRequest(
        info=info, kind=ApiKind.WEBSOCKET, method_arn=ARN, region="us-east-1", connection_id="c="
    )


async def test_presigned_upgrade_get_is_authorized() -> None:
    url, headers = sign("GET", "http://gw.test:8080/dev?room=lobby", presign=True, expires=60)
    result = await authorizer().authorize(connect_request(url, headers))
    assert result.identity is not None and result.identity["accessKey"] == KEY_ID
    assert result.authorizer is None  # WebSocket events carry the IAM caller in identity


async def test_header_signed_upgrade_get_is_authorized() -> None:
    url, headers = sign("GET", "http://gw.test:8080/dev")
    result = await authorizer().authorize(connect_request(url, headers))
    assert result.principal_id == "arn:aws:iam::123456789012:user/" + KEY_ID


@pytest.mark.parametrize(
    ("case", "error"),
    [("unsigned", MissingSignature), ("wrong-secret", InvalidSignature), ("not-allowed", AccessDenied)],
)
async def test_refused_connects(case: str, error: type[GatewayError]) -> None:
    url, headers = sign(
        "GET", "http://gw.test:8080/dev", presign=True, secret="x" if case == "wrong-secret" else SECRET
    )
    if case == "unsigned":
        url, headers = "http://gw.test:8080/dev", [("Host", "gw.test:8080")]
    policy = CONNECT_ONLY
    if case == "not-allowed":
        policy = parse_policy(
            {
                "Statement": {
                    "Effect": "Allow",
                    "Action": "execute-api:Invoke",
                    "Resource": "arn:aws:execute-api:*:*:other/*",
                }
            }
        )
    with pytest.raises(error):
        await authorizer(policy).authorize(connect_request(url, headers))

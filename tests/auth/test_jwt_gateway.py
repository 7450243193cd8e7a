"""JWT (HTTP API) and Cognito (REST) authorizers end to end: a real gateway on port 0, a real
local issuer serving discovery + JWKS on port 0, tokens minted with pyjwt, and a Python handler
echoing the event it received (aws-contract.md §5.3, §5.4, §0.4, §0.5)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.auth.jwt_verify import LEEWAY_S
from server.config.load import load_config
from server.config.model import (
    ApiConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    GatewayConfig,
    RouteConfig,
    StageConfig,
)
from tests.auth.jwt_issuer import AUDIENCE, DROP, Issuer, issuer, rsa_key
from tests.server.test_gateway_rest import Client, python

__all__ = ["issuer"]

Gateway = TestClient[Any, Any]


def _route(
    key: str, auth: AuthorizerConfig | None, *, payload: str = "2.0", scopes: tuple[str, ...] = ()
) -> RouteConfig:
    method, _, path = key.partition(" ")
    return RouteConfig(
        method, path, python("echo", payload=payload), authorizer=auth, authorization_scopes=scopes
    )


def config(issuer_url: str, jwks_uri: str | None = None) -> GatewayConfig:
    jwt_auth = AuthorizerConfig(
        "jwt", AuthorizerType.JWT, issuer=issuer_url, audiences=("other", AUDIENCE), jwks_uri=jwks_uri
    )
    by_query = AuthorizerConfig(
        "q",
        AuthorizerType.JWT,
        issuer=issuer_url,
        audiences=(AUDIENCE,),
        identity_sources=("$request.querystring.token",),
    )
    http = ApiConfig(
        "h",
        "hid",
        ApiKind.HTTP,
        (StageConfig("$default"),),
        (
            _route("GET /v2", jwt_auth),
            _route("GET /v1", jwt_auth, payload="1.0"),
            _route("GET /scoped", jwt_auth, scopes=("admin", "read")),
            _route("GET /query", by_query),
            _route("GET /open", None),
        ),
    )
    pool = AuthorizerConfig(
        "pool",
        AuthorizerType.COGNITO_USER_POOLS,
        identity_sources=("method.request.header.Authorization",),
        user_pool_arns=("arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc",),
        issuer=issuer_url,  # the local stand-in for the pool
    )
    strict = AuthorizerConfig(
        "strict",
        AuthorizerType.COGNITO_USER_POOLS,
        user_pool_arns=pool.user_pool_arns,
        issuer=issuer_url,
        identity_validation="portway-.*",  # Cognito: a regex on aud
    )
    rest = ApiConfig(
        "r",
        "rid",
        ApiKind.REST,
        (StageConfig("dev"),),
        (
            _route("GET /id", pool, payload="1.0"),
            _route("GET /orders", pool, payload="1.0", scopes=("orders/read",)),
            _route("GET /strict", strict, payload="1.0"),
        ),
    )
    return GatewayConfig(apis=(http, rest))


@pytest.fixture
async def gateway(aiohttp_client: Client, issuer: Issuer) -> Gateway:
    return await aiohttp_client(create_app(config(issuer.url)))


async def call(
    gateway: Gateway, path: str, token: str | None = None, *, prefix: str = "Bearer "
) -> tuple[int, Any, Any]:
    headers = {"Authorization": prefix + token} if token is not None else {}
    resp = await gateway.get(path, headers=headers)
    body = await resp.read()
    data = json.loads(body) if body else None
    if resp.status == 200:
        return resp.status, json.loads(data["body"]) if "body" in data else data, resp.headers
    return resp.status, body, resp.headers


def event(reply: Any) -> dict[str, Any]:
    found: dict[str, Any] = reply["event"]
    return found


# --- HTTP API JWT authorizer -----------------------------------------------------------


async def test_claims_reach_a_payload_2_0_integration_as_aws_shapes_them(
    gateway: Gateway, issuer: Issuer
) -> None:
    token = issuer.token(email_verified=True, groups=["a", "b"], profile={"x": 1}, nothing=None)
    status, reply, _ = await call(gateway, "/v2", token)
    assert status == 200
    authorizer = event(reply)["requestContext"]["authorizer"]
    claims = authorizer["jwt"]["claims"]
    assert authorizer["jwt"]["scopes"] is None  # the route has no scopes
    assert claims["iss"] == issuer.url and claims["sub"] == "user-1" and claims["aud"] == AUDIENCE
    assert claims["email_verified"] == "true" and claims["groups"] == "[a b]"
    assert claims["profile"] == '{"x":1}' and "nothing" not in claims
    assert claims["exp"] == str(json.loads(_payload(token))["exp"])


def _payload(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


async def test_payload_1_0_gets_claims_and_scopes_at_the_top(gateway: Gateway, issuer: Issuer) -> None:
    status, reply, _ = await call(gateway, "/v1", issuer.token(), prefix="")  # no Bearer: fine
    assert status == 200
    authorizer = event(reply)["requestContext"]["authorizer"]
    assert set(authorizer) == {"claims", "scopes"} and authorizer["claims"]["sub"] == "user-1"


async def test_a_missing_or_invalid_token_is_401_with_www_authenticate(
    gateway: Gateway, issuer: Issuer
) -> None:
    cases = {
        None: "the token is missing",
        issuer.token(aud="someone-else"): "the token does not have a valid audience",
        issuer.token(iss="https://elsewhere"): "the token does not have a valid issuer",
        issuer.token(lifetime=-60): "the token has expired",
        issuer.token(nbf=int(time.time()) + 600): "the token is not valid yet",
        issuer.token(exp=DROP): "the token has no expiry",
        "not-a-jwt": "token contains an invalid number of segments",
    }
    for token, description in cases.items():
        status, body, headers = await call(gateway, "/v2", token)
        assert (status, body) == (401, b'{"message":"Unauthorized"}'), description
        assert headers["www-authenticate"] == (
            f'Bearer scope="" error="invalid_token" error_description="{description}"'
        )
        assert "x-amzn-ErrorType" not in headers and "apigw-requestid" in headers


async def test_client_id_counts_as_audience(gateway: Gateway, issuer: Issuer) -> None:
    status, _, _ = await call(gateway, "/v2", issuer.token(aud=DROP, client_id=AUDIENCE))
    assert status == 200


async def test_scopes_one_is_enough_and_a_mismatch_alone_is_403(gateway: Gateway, issuer: Issuer) -> None:
    status, reply, _ = await call(gateway, "/scoped", issuer.token(scope="write read"))
    assert status == 200
    assert event(reply)["requestContext"]["authorizer"]["jwt"]["scopes"] == ["write", "read"]
    status, _, _ = await call(gateway, "/scoped", issuer.token(scp=["admin"]))
    assert status == 200
    status, body, headers = await call(gateway, "/scoped", issuer.token(scope="write"))
    assert (status, body) == (403, b'{"message":"Forbidden"}')
    assert "www-authenticate" not in headers
    status, _, _ = await call(gateway, "/scoped", issuer.token(scope="read", aud="x"))
    assert status == 401  # an invalid token is 401 whatever its scopes
    cached = issuer.token(scope="write")
    assert (await call(gateway, "/v2", cached))[0] == 200  # verified and cached on a route without scopes
    assert (await call(gateway, "/scoped", cached))[0] == 403  # the cache holds the token, not the decision


async def test_the_token_may_come_from_the_query_string(gateway: Gateway, issuer: Issuer) -> None:
    resp = await gateway.get("/query", params={"token": issuer.token()})
    assert resp.status == 200
    assert (await gateway.get("/query")).status == 401


async def test_routes_without_an_authorizer_stay_open(gateway: Gateway) -> None:
    status, reply, _ = await call(gateway, "/open")
    assert status == 200 and "authorizer" not in event(reply)["requestContext"]


async def test_alg_attacks_through_the_gateway(gateway: Gateway, issuer: Issuer) -> None:
    attacker = issuer.token(key=_attacker_key(), headers={"jwk": {"kty": "RSA"}})
    status, _, headers = await call(gateway, "/v2", attacker)
    assert status == 401 and "signature is invalid" in headers["www-authenticate"]
    forged = issuer.token(kid="evil", key=_attacker_key())  # unknown kid: one refetch, then 401
    status, _, headers = await call(gateway, "/v2", forged)
    assert status == 401 and "unknown signing key" in headers["www-authenticate"]


def _attacker_key() -> Any:
    return rsa_key("attacker")


async def test_key_rotation_is_picked_up_by_the_first_token_signed_with_the_new_key(
    gateway: Gateway, issuer: Issuer
) -> None:
    assert (await call(gateway, "/v2", issuer.token()))[0] == 200
    assert issuer.hits["/jwks"] == 1
    issuer.rotate("k2")
    assert (await call(gateway, "/v2", issuer.token(kid="k2")))[0] == 200
    assert issuer.hits["/jwks"] == 2
    for n in range(5):  # made-up kids within the interval fetch nothing
        assert (
            await call(gateway, "/v2", issuer.token(kid="k2", key=_attacker_key(), headers={"kid": f"x{n}"}))
        )[0] == 401
    assert issuer.hits["/jwks"] == 2  # within 30 s of the rotation's fetch: no refetch


async def test_verified_tokens_are_cached_but_still_expire(gateway: Gateway, issuer: Issuer) -> None:
    token = issuer.token(lifetime=2 - LEEWAY_S)  # accepted for about 2 s more
    for _ in range(3):
        assert (await call(gateway, "/v2", token))[0] == 200
    assert issuer.hits["/jwks"] == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, _, headers = await call(gateway, "/v2", token)
        if status == 401:
            assert "the token has expired" in headers["www-authenticate"]
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail("a cached token outlived its exp")


async def test_an_unreachable_issuer_is_401_not_an_open_route(aiohttp_client: Client) -> None:
    gateway = await aiohttp_client(create_app(config("http://127.0.0.1:9")))
    status, body, headers = await call(gateway, "/v2", "a.b.c")
    assert (status, body) == (401, b'{"message":"Unauthorized"}')
    assert "signing keys are unavailable" in headers["www-authenticate"]


# --- REST Cognito user pool authorizer -------------------------------------------------


async def test_cognito_id_token_on_a_route_without_scopes(gateway: Gateway, issuer: Issuer) -> None:
    token = issuer.token(
        token_use="id", email_verified=True, auth_time=1744630411, **{"cognito:groups": ["admin"]}
    )
    status, reply, _ = await call(gateway, "/dev/id", token, prefix="")
    assert status == 200
    claims = event(reply)["requestContext"]["authorizer"]["claims"]
    assert set(event(reply)["requestContext"]["authorizer"]) == {"claims"}
    assert claims["email_verified"] == "true" and claims["auth_time"] == "1744630411"
    assert claims["cognito:groups"] == "admin" and claims["token_use"] == "id"
    exp = json.loads(_payload(token))["exp"]
    assert claims["exp"] == time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(exp))


async def test_cognito_token_use_depends_on_the_route_scopes(gateway: Gateway, issuer: Issuer) -> None:
    access = issuer.token(token_use="access", aud=DROP, client_id=AUDIENCE, scope="orders/read profile")
    id_token = issuer.token(token_use="id")
    assert (await call(gateway, "/dev/orders", access))[0] == 200
    refusals = [
        ("/dev/id", access),  # no scopes: only ID tokens
        ("/dev/orders", id_token),  # scopes: only access tokens
        ("/dev/orders", issuer.token(token_use="access", scope="profile")),  # none of the scopes
        ("/dev/id", issuer.token(token_use="id", lifetime=-60)),
        ("/dev/id", None),
    ]
    for path, token in refusals:
        status, body, headers = await call(gateway, path, token)
        assert (status, body) == (401, b'{"message":"Unauthorized"}'), path
        assert headers["x-amzn-ErrorType"] == "UnauthorizedException"
        assert "www-authenticate" not in headers


# --- from serverless.yml, with the local issuer override -------------------------------


async def test_a_serverless_http_api_jwt_route_served_against_a_local_issuer(
    aiohttp_client: Client, issuer: Issuer, tmp_path: Path
) -> None:
    (tmp_path / "handler.py").write_text(
        "import json\n"
        "def me(event, context):\n"
        "    return {'statusCode': 200, 'body': json.dumps(event['requestContext']['authorizer'])}\n"
    )
    (tmp_path / "serverless.yml").write_text(
        f"""
service: app
provider:
  name: aws
  httpApi:
    authorizers:
      users:
        issuerUrl: https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc
        audience: {AUDIENCE}
custom:
  portway:
    authorizers:
      users: {{issuer: '{issuer.url}'}}
functions:
  me:
    handler: handler.me
    events:
      - httpApi: {{method: get, path: /me, authorizer: {{name: users, scopes: [profile]}}}}
"""
    )
    gateway = await aiohttp_client(create_app(load_config(tmp_path / "serverless.yml", env={})))
    resp = await gateway.get("/me", headers={"Authorization": issuer.token(scope="profile")})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["jwt"]["scopes"] == ["profile"]
    assert (await gateway.get("/me", headers={"Authorization": issuer.token(scope="other")})).status == 403
    assert (await gateway.get("/me")).status == 401


async def test_cognito_identity_validation_expression_matches_aud(gateway: Gateway, issuer: Issuer) -> None:
    assert (await call(gateway, "/dev/strict", issuer.token(token_use="id")))[0] == 200  # portway-client
    status, body, _ = await call(gateway, "/dev/strict", issuer.token(token_use="id", aud="other-client"))
    assert (status, body) == (401, b'{"message":"Unauthorized"}')

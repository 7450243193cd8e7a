"""serverless.yml JWT (httpApi) and Cognito (http) authorizers -> AuthorizerConfig, the local
issuer overrides (custom.portway.authorizers), and the forms refused with their location."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config.model import ApiKind, AuthorizerType
from tests.config.test_serverless import load, problems, routes

POOL = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc"

HTTP_API = """
service: app
provider:
  name: aws
  httpApi:
    authorizers:
      users:
        identitySource: $request.header.Authorization
        issuerUrl: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc
        audience:
          - client-1
      byQuery:
        type: jwt
        identitySource: $request.querystring.token
        issuerUrl: https://issuer.example
        audience: client-2
custom:
  portway:
    authorizers:
      users: {issuer: 'http://127.0.0.1:9000/local', jwksUri: 'http://127.0.0.1:9000/jwks'}
functions:
  f:
    handler: handler.f
    events:
      - httpApi: {method: get, path: /me, authorizer: {name: users, scopes: [profile, admin]}}
      - httpApi: {method: get, path: /you, authorizer: {name: users}}
      - httpApi: {method: get, path: /q, authorizer: {name: byQuery}}
      - httpApi: {method: get, path: /open}
"""


def test_http_api_jwt_authorizers_with_scopes_and_overrides(tmp_path: Path) -> None:
    by_key = routes(load(tmp_path, HTTP_API), ApiKind.HTTP)
    me, you, q, open_route = by_key["GET /me"], by_key["GET /you"], by_key["GET /q"], by_key["GET /open"]
    assert me.authorizer is not None and me.authorizer is you.authorizer  # one authorizer, shared
    assert me.authorizer.type is AuthorizerType.JWT
    assert me.authorizer.issuer == "http://127.0.0.1:9000/local"  # the local override
    assert me.authorizer.jwks_uri == "http://127.0.0.1:9000/jwks"
    assert me.authorizer.audiences == ("client-1",)
    assert me.authorizer.identity_sources == ("$request.header.Authorization",)
    assert me.authorization_scopes == ("profile", "admin") and you.authorization_scopes == ()
    assert q.authorizer is not None and q.authorizer.issuer == "https://issuer.example"
    assert q.authorizer.jwks_uri is None and q.authorizer.audiences == ("client-2",)
    assert q.authorizer.identity_sources == ("$request.querystring.token",)
    assert open_route.authorizer is None


REST = f"""
service: app
provider: {{name: aws}}
custom:
  portway:
    authorizers:
      eu-west-1_Abc: {{issuer: 'http://127.0.0.1:9000/pool', audience: [app-client]}}
functions:
  f:
    handler: handler.f
    events:
      - http: {{path: a, method: get, authorizer: {POOL}}}
      - http: {{path: b, method: get, authorizer: {{arn: '{POOL}', scopes: [orders/read]}}}}
      - http:
          path: c
          method: get
          authorizer: {{type: COGNITO_USER_POOLS, authorizerId: {{Ref: PoolAuthorizer}}, name: viaRef}}
resources:
  Resources:
    PoolAuthorizer:
      Type: AWS::ApiGateway::Authorizer
      Properties:
        Type: COGNITO_USER_POOLS
        ProviderARNs: ['{POOL}']
"""


def test_rest_cognito_forms(tmp_path: Path) -> None:
    by_key = routes(load(tmp_path, REST), ApiKind.REST)
    a, b, c = by_key["GET /a"], by_key["GET /b"], by_key["GET /c"]
    assert a.authorizer is not None and a.authorizer is b.authorizer
    assert a.authorizer.type is AuthorizerType.COGNITO_USER_POOLS
    assert a.authorizer.user_pool_arns == (POOL,)
    assert a.authorizer.identity_sources == ("method.request.header.Authorization",)
    assert a.authorizer.issuer == "http://127.0.0.1:9000/pool" and a.authorizer.audiences == ("app-client",)
    assert a.authorization_scopes == () and b.authorization_scopes == ("orders/read",)
    assert (
        c.authorizer is not None and c.authorizer.name == "viaRef" and c.authorizer.user_pool_arns == (POOL,)
    )
    assert c.authorizer.issuer is None  # no override for viaRef: the real pool's issuer


_REFUSED = {
    "unknown-name": (
        "- httpApi: {method: get, path: /a, authorizer: {name: nobody}}",
        "functions.f.events[0].httpApi.authorizer",
        "no authorizer 'nobody' in provider.httpApi.authorizers (declared: bad, users)",
    ),
    "no-issuer": (
        "- httpApi: {method: get, path: /a, authorizer: {name: bad}}",
        "provider.httpApi.authorizers.bad.issuerUrl",
        "the issuer's URL (https://...) is required",
    ),
    "too-many-scopes": (
        "- httpApi: {method: get, path: /a, authorizer: {name: users, scopes: [a,b,c,d,e,f,g,h,i,j,k]}}",
        "functions.f.events[0].httpApi.authorizer.scopes",
        "a list of 1 to 10 scope names",
    ),
    "cognito-on-http-api": (
        "- httpApi: {method: get, path: /a, authorizer: {arn: '" + POOL + "'}}",
        "functions.f.events[0].httpApi.authorizer",
        "a Cognito user pool authorizer applies to REST APIs (http events); an httpApi route uses a jwt "
        "authorizer whose issuerUrl is the pool's",
    ),
    "cognito-on-websocket": (
        "- websocket: {route: $connect, authorizer: {arn: '" + POOL + "'}}",
        "functions.f.events[0].websocket.authorizer",
        "a Cognito user pool authorizer applies to REST APIs (http events); an httpApi route uses a jwt "
        "authorizer whose issuerUrl is the pool's",
    ),
    "bad-arn": (
        "- http: {path: a, method: get, authorizer: {arn: 'arn:aws:cognito-idp:x:1:pool'}}",
        "functions.f.events[0].http.authorizer",
        "a Cognito user pool ARN (arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID)",
    ),
    "unresolvable-authorizer-id": (
        "- http: {path: a, method: get, authorizer: {type: COGNITO_USER_POOLS, authorizerId: abc123}}",
        "functions.f.events[0].http.authorizer.authorizerId",
        "cannot be resolved locally: use {Ref: NAME} of an AWS::ApiGateway::Authorizer in "
        "resources.Resources, or give the user pool as arn:",
    ),
}


@pytest.mark.parametrize("case", list(_REFUSED), ids=list(_REFUSED))
def test_forms_that_cannot_be_enforced_are_errors_with_locations(tmp_path: Path, case: str) -> None:
    event, location, message = _REFUSED[case]
    found = problems(
        tmp_path,
        f"""
        service: app
        provider:
          name: aws
          httpApi:
            authorizers:
              users: {{issuerUrl: 'https://issuer.example', audience: a}}
              bad: {{audience: a}}
        functions:
          f:
            handler: handler.f
            events:
              {event}
        """,
    )
    assert (location, message) in found


def test_bad_overrides_are_errors(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        service: app
        provider:
          name: aws
          httpApi:
            authorizers:
              users: {issuerUrl: 'https://issuer.example', audience: a}
        custom:
          portway:
            authorizers:
              users: {issuer: not-a-url, jwks: 'http://x'}
        functions:
          f:
            handler: handler.f
            events:
              - httpApi: {method: get, path: /a, authorizer: {name: users}}
        """,
    )
    assert ("custom.portway.authorizers.users.issuer", "an http(s) URL") in found
    assert ("custom.portway.authorizers.users.jwks", "unknown setting (use issuer, jwksUri)") in found

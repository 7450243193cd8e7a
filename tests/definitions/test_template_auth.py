"""Authorizers declared in templates become the gateway's authorizers (never a route served open):
SAM ``Auth`` (JWT, Cognito, AWS_IAM, NONE; Lambda authorizers refused until they are enforced) and
ApiGatewayV2 ``Authorizer`` resources."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.load import load_config
from server.config.model import ApiKind, AuthorizerType, GatewayConfig

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

SAM = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {CodeUri: src, Timeout: 10}
Resources:
  RestApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: dev
      Auth:
        DefaultAuthorizer: Pool
        Authorizers:
          Pool:
            UserPoolArn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {issuer: "https://issuer.example.com", audience: [app]}
  AppFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Events:
        Cognito: {Type: Api, Properties: {RestApiId: !Ref RestApi, Path: /c, Method: get}}
        Iam:
          Type: Api
          Properties: {RestApiId: !Ref RestApi, Path: /i, Method: get, Auth: {Authorizer: AWS_IAM}}
        Open:
          Type: Api
          Properties: {RestApiId: !Ref RestApi, Path: /o, Method: get, Auth: {Authorizer: NONE}}
        Jwt:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Path: /j, Method: get, Auth: {AuthorizationScopes: [read]}}
"""

APP = """\
def handler(event, context):
    return {"statusCode": 200, "body": "ok"}
"""


def load(tmp_path: Path) -> GatewayConfig:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    (tmp_path / "template.yaml").write_text(SAM)
    return load_config(tmp_path / "template.yaml")


async def test_sam_authorizers(tmp_path: Path, aiohttp_client: Client) -> None:
    config = load(tmp_path)
    assert config.warnings == ()
    routes = {(api.kind, route.route_key): route for api in config.apis for route in api.routes}
    kinds = {key: (r.authorizer.type if r.authorizer else None) for key, r in routes.items()}
    assert kinds == {
        (ApiKind.REST, "GET /c"): AuthorizerType.COGNITO_USER_POOLS,
        (ApiKind.REST, "GET /i"): AuthorizerType.AWS_IAM,
        (ApiKind.REST, "GET /o"): None,
        (ApiKind.HTTP, "GET /j"): AuthorizerType.JWT,
    }
    pool = routes[(ApiKind.REST, "GET /c")].authorizer
    assert pool is not None and pool.user_pool_arns == (
        "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc",
    )
    assert routes[(ApiKind.HTTP, "GET /j")].authorization_scopes == ("read",)
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/dev/c")).status == 401  # no token: never served open
    assert (await client.get("/dev/i")).status == 403  # unsigned
    assert (await client.get("/j")).status == 401
    opened = await client.get("/dev/o")
    assert (opened.status, await opened.text()) == (200, "ok")


def test_lambda_authorizers_are_enforced(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP + "\n\ndef auth(event, context):\n    return {}\n")
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """\
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Api:
                Type: AWS::Serverless::Api
                Properties:
                  StageName: dev
                  Auth:
                    DefaultAuthorizer: Token
                    Authorizers:
                      Token: {FunctionArn: !GetAtt AuthFunction.Arn}
              AuthFunction:
                Type: AWS::Serverless::Function
                Properties: {CodeUri: src, Handler: app.auth}
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: src
                  Handler: app.handler
                  Events:
                    Get: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /x, Method: get}}
            """
        )
    )
    routes = [route for api in load_config(tmp_path / "template.yaml").apis for route in api.routes]
    (route,) = [route for route in routes if route.path == "/x"]
    assert route.authorizer is not None and route.authorizer.type is AuthorizerType.TOKEN
    assert route.authorizer.function is not None and route.authorizer.function.handler == "app.auth"


def test_cloudformation_v2_http_api_with_jwt_authorizer(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """\
            Metadata:
              Portway:
                functions: {fn: app.handler}
            Resources:
              Api:
                Type: AWS::ApiGatewayV2::Api
                Properties: {Name: v2, ProtocolType: HTTP}
              Integration:
                Type: AWS::ApiGatewayV2::Integration
                Properties:
                  ApiId: !Ref Api
                  IntegrationType: AWS_PROXY
                  IntegrationUri: arn:aws:lambda:us-east-1:123456789012:function:fn
                  PayloadFormatVersion: "2.0"
              Auth:
                Type: AWS::ApiGatewayV2::Authorizer
                Properties:
                  ApiId: !Ref Api
                  AuthorizerType: JWT
                  IdentitySource: [$request.header.Authorization]
                  JwtConfiguration: {Issuer: "https://issuer.example.com", Audience: [app]}
              Default:
                Type: AWS::ApiGatewayV2::Route
                Properties:
                  ApiId: !Ref Api
                  RouteKey: $default
                  Target: !Sub integrations/${Integration}
                  AuthorizationType: JWT
                  AuthorizerId: !Ref Auth
              Stage:
                Type: AWS::ApiGatewayV2::Stage
                Properties: {ApiId: !Ref Api, StageName: $default, AutoDeploy: true}
            """
        )
    )
    config = load_config(tmp_path / "template.yaml")
    assert config.warnings == ()
    (api,) = config.apis
    (route,) = api.routes
    assert (api.kind, api.stages[0].name, route.route_key) == (ApiKind.HTTP, "$default", "$default")
    assert route.authorizer is not None and route.authorizer.type is AuthorizerType.JWT
    assert route.authorizer.audiences == ("app",)
    assert (route.integration.handler, route.integration.payload_format) == ("app.handler", "2.0")

"""An HTTP API exported from AWS (``aws apigatewayv2 export-api --output-type YAML --specification
OAS30``: the shape of AWS's documented export, written for these tests) served end to end: a JWT-protected
Lambda route, the ``$default`` route to an HTTP backend, and a Swagger 2 document read the same way."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.load import load_config
from server.config.model import DEFAULT_STAGE, ApiKind, AuthorizerType
from tests.backends import Backend

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

HTTP_API_EXPORT = """\
openapi: "3.0.1"
info:
  title: "pets-http"
  version: "2024-05-01 10:00:00UTC"
servers:
- url: "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/{basePath}"
  variables:
    basePath:
      default: ""
paths:
  /pets/{id}:
    get:
      responses:
        default:
          description: "Default response for GET /pets/{id}"
      security:
      - jwt-authorizer:
        - pets/read
      x-amazon-apigateway-integration:
        payloadFormatVersion: "2.0"
        type: "aws_proxy"
        httpMethod: "POST"
        uri: "arn:aws:lambda:us-east-1:123456789012:function:pets"
        connectionType: "INTERNET"
    parameters:
    - name: "id"
      in: "path"
      required: true
      schema:
        type: "string"
  /$default:
    x-amazon-apigateway-any-method:
      isDefaultRoute: true
      x-amazon-apigateway-integration:
        payloadFormatVersion: "1.0"
        type: "http_proxy"
        httpMethod: "ANY"
        uri: "https://legacy.example.com"
        connectionType: "INTERNET"
components:
  securitySchemes:
    jwt-authorizer:
      type: "oauth2"
      flows: {}
      x-amazon-apigateway-authorizer:
        identitySource: "$request.header.Authorization"
        jwtConfiguration:
          audience:
          - "pets-client"
          issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example"
        type: "jwt"
x-amazon-apigateway-cors:
  allowOrigins: ["*"]
x-amazon-apigateway-importexport-version: "1.0"
"""


async def test_http_api_export_serves_jwt_and_default_routes(
    tmp_path: Path, aiohttp_client: Client, backend: Backend
) -> None:
    (tmp_path / "pets.py").write_text("def handler(event, context):\n    return {'statusCode': 200}\n")
    path = tmp_path / "export.yaml"
    path.write_text(HTTP_API_EXPORT)
    (tmp_path / "bindings.yaml").write_text(
        f"functions: {{pets: pets.handler}}\nendpoints: {{'https://legacy.example.com': 'http://127.0.0.1:{backend.port}'}}\n"
    )
    config = load_config(path, bindings=tmp_path / "bindings.yaml")
    assert config.warnings == (
        "x-amazon-apigateway-cors: HTTP API CORS is not supported yet: preflight requests reach the routes",
    )
    (api,) = config.apis
    assert (api.kind, api.stages[0].name) == (ApiKind.HTTP, DEFAULT_STAGE)
    routes = {route.route_key: route for route in api.routes}
    pets = routes["GET /pets/{id}"]
    assert pets.authorizer is not None and pets.authorizer.type is AuthorizerType.JWT
    assert (pets.authorization_scopes, pets.integration.payload_format) == (("pets/read",), "2.0")
    client = await aiohttp_client(create_app(config))
    denied = await client.get("/pets/1")
    assert (denied.status, await denied.json()) == (401, {"message": "Unauthorized"})
    fallback = await client.post("/anything/else")
    assert (fallback.status, await fallback.json()) == (200, {"ok": True})
    assert backend.total == 1


def test_swagger_2_document_and_its_lambda_authorizer(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text("def handler(event, context):\n    return {}\n")
    path = tmp_path / "swagger.json"
    path.write_text(
        textwrap.dedent(
            """\
            {"swagger": "2.0", "info": {"title": "legacy", "version": "1"}, "basePath": "/beta",
             "x-portway": {"functions": {"auth": "auth.handler"}},
             "paths": {"/x": {"get": {"security": [{"tok": []}],
               "x-amazon-apigateway-integration": {"type": "mock",
                 "requestTemplates": {"application/json": "{\\"statusCode\\": 202}"},
                 "responses": {"default": {"statusCode": "202"}}}}}},
             "securityDefinitions": {"tok": {"type": "apiKey", "name": "Authorization", "in": "header",
               "x-amazon-apigateway-authtype": "custom",
               "x-amazon-apigateway-authorizer": {"type": "token", "authorizerResultTtlInSeconds": 60,
                 "authorizerUri": "URI"}}}}
            """
        )
    )
    uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/ARN/invocations"
    lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:auth"
    path.write_text(path.read_text().replace('"URI"', f'"{uri}"').replace("ARN", lambda_arn))
    (guarded,) = load_config(path).apis[0].routes
    assert guarded.authorizer is not None and guarded.authorizer.type is AuthorizerType.TOKEN
    assert guarded.authorizer.ttl_s == 60
    # Without the authorizer the document is served: the MOCK's status and the Swagger 2 base path.
    path.write_text(path.read_text().replace('"security": [{"tok": []}],', ""))
    (api,) = load_config(path).apis
    assert (api.kind, api.stages[0].name) == (ApiKind.REST, "beta")
    (route,) = api.routes
    assert route.integration.mock is not None and route.integration.mock.status == 202

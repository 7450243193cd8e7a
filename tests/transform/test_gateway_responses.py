"""Customised gateway responses (reference §2.6), from serverless.yml and the native format,
served end to end by a real gateway on port 0 (aiohttp's client).

Expected defaults: AWS's default template of every type is
``{"message":$context.error.messageString}`` (LocalStack's AWS-validated snapshot
``tests/aws/services/apigateway/test_apigateway_common.snapshot.json``,
``test_gateway_response_crud``, as recorded in shared/reference/aws-api-gateway.md §0.3), and the
default statuses are those of §2.6.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import GatewayResponseConfig, frozen_map
from server.errors import BadRequestBody, IntegrationFailure, Throttled
from server.gateway_responses import ErrorScope, GatewayResponses
from server.render import render_error

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

HANDLER = "def ok(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n\n\n" + (
    "def boom(event, context):\n    raise ValueError('boom')\n"
)

SERVERLESS = """\
service: gr
provider:
  name: aws
  stage: dev
functions:
  ok:
    handler: handler.ok
    events:
      - http: GET ok
      - http:
          path: keyed
          method: get
          private: true
  boom:
    handler: handler.boom
    events:
      - http: GET boom
resources:
  Resources:
    NotFoundResponse:
      Type: AWS::ApiGateway::GatewayResponse
      Properties:
        ResponseType: MISSING_AUTHENTICATION_TOKEN
        StatusCode: '404'
        RestApiId:
          Ref: ApiGatewayRestApi
        ResponseParameters:
          gatewayresponse.header.Access-Control-Allow-Origin: "'*'"
        ResponseTemplates:
          application/json: >-
            {"error":$context.error.messageString,"type":"$context.error.responseType","path":"$context.path"}
    Default4xx:
      Type: AWS::ApiGateway::GatewayResponse
      Properties:
        ResponseType: DEFAULT_4XX
        RestApiId:
          Ref: ApiGatewayRestApi
        ResponseParameters:
          gatewayresponse.header.Access-Control-Allow-Origin: method.request.header.Origin
          gatewayresponse.header.X-Stage: context.stage
    Default5xx:
      Type: AWS::ApiGateway::GatewayResponse
      Properties:
        ResponseType: DEFAULT_5XX
        StatusCode: '503'
        RestApiId:
          Ref: ApiGatewayRestApi
        ResponseTemplates:
          application/json: '{"oops":"$context.error.message","id":"$context.requestId"}'
"""


def project(tmp_path: Path, text: str, name: str = "serverless.yml") -> Path:
    (tmp_path / "handler.py").write_text(HANDLER)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
async def gateway(aiohttp_client: Client, tmp_path: Path) -> TestClient[Any, Any]:
    config = load_config(project(tmp_path, SERVERLESS), env={})
    return await aiohttp_client(create_app(config))


async def test_a_typed_response_replaces_status_headers_and_body(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.get("/dev/nowhere")
    assert resp.status == 404
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    # The error's own class header stays: SDKs read the error code from it (reference §0.3).
    assert resp.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert resp.headers["Content-Type"] == "application/json"
    assert json.loads(await resp.text()) == {
        "error": "Missing Authentication Token",
        "type": "MISSING_AUTHENTICATION_TOKEN",
        "path": "",
    }


async def test_default_4xx_applies_to_types_without_their_own(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.get("/dev/keyed", headers={"Origin": "https://app.example"})
    assert resp.status == 403  # INVALID_API_KEY keeps its status: DEFAULT_4XX sets none
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert resp.headers["X-Stage"] == "dev"
    # No template: AWS's default one, without a space after the colon (§0.3).
    assert await resp.text() == '{"message":"Forbidden"}'
    # A parameter the request lacks maps to no header at all.
    resp = await gateway.get("/dev/keyed")
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_default_5xx_status_and_template(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.get("/dev/boom")
    assert resp.status == 503
    body = json.loads(await resp.text())
    assert body == {"oops": "Internal server error", "id": resp.headers["x-amzn-RequestId"]}


async def test_routes_without_errors_are_untouched(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.get("/dev/ok")
    assert resp.status == 200
    assert await resp.text() == "ok"
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_render_without_custom_responses_is_the_default() -> None:
    # Integration failures keep AWS's spaced body (§0.3, LS-snap test_apigateway_header_remapping_http).
    assert render_error(IntegrationFailure()).body == b'{"message": "Internal server error"}'
    empty = GatewayResponses({})
    assert render_error(Throttled(), responses=empty).body == b'{"message":"Too Many Requests"}'


def test_validation_error_string_and_stage_variables() -> None:
    template = (
        '{"m":$context.error.messageString,"v":"$context.error.validationErrorString",'
        '"s":"${stageVariables.s}"}'
    )
    config = GatewayResponseConfig(
        "BAD_REQUEST_BODY", 422, templates=frozen_map({"application/json": template})
    )
    responses = GatewayResponses({"BAD_REQUEST_BODY": config})
    error = BadRequestBody()
    error.validation_error = "[instance type (string) does not match]"  # type: ignore[attr-defined]
    scope = ErrorScope({}, {"s": "blue"}, lambda where, name: None)
    response = render_error(error, responses=responses, scope=scope)
    assert response.status == 422
    assert json.loads(response.body) == {
        "m": "Invalid request body",
        "v": "[instance type (string) does not match]",
        "s": "blue",
    }


NATIVE = """\
portway: 1
apis:
  - name: pets
    stages: {dev: {}}
    gatewayResponses:
      THROTTLED:
        statusCode: 503
        responseParameters:
          gatewayresponse.header.Retry-After: "'7'"
        responseTemplates:
          application/json: '{"slow":"down"}'
    routes:
      GET /ok: handler.ok
"""


def test_native_format(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, NATIVE, "portway.yml"), env={})
    (api,) = config.apis
    throttled = api.gateway_responses["THROTTLED"]
    assert throttled.status == 503
    assert dict(throttled.headers) == {"Retry-After": "'7'"}
    response = render_error(Throttled(), responses=GatewayResponses(api.gateway_responses))
    assert response.status == 503
    assert response.body == b'{"slow":"down"}'
    assert response.header("Retry-After") == "7"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("NOPE: {}", "'NOPE' is not one of"),
        ("DEFAULT_4XX: {statusCode: 999}", "status 999 is not an HTTP status (100-599)"),
    ],
)
def test_native_errors(tmp_path: Path, entry: str, message: str) -> None:
    text = NATIVE.replace(
        "      THROTTLED:\n        statusCode: 503\n",
        f"      {entry}\n      THROTTLED:\n        statusCode: 503\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(project(tmp_path, text, "portway.yml"), env={})
    assert any(message in issue.message for issue in info.value.issues), info.value.issues

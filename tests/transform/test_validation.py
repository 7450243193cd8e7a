"""Request validation (reference §7.1), end to end through a real gateway on port 0.

Expected bodies are AWS's recorded ones: 400 ``{"message":"Missing required request parameters:
[...]"}`` and 400 ``{"message":"Invalid request body"}``, both with ``x-amzn-ErrorType:
BadRequestException`` (LocalStack's AWS-validated snapshot
``tests/aws/services/apigateway/test_apigateway_common.snapshot.json``,
``test_api_gateway_request_validator``; shared/reference/aws-api-gateway.md §0.4). The
``validationErrorString`` wording is that of AWS's Java validator
(``object has missing required properties (["name"])``, reference §2.6's substitution list).
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

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

HANDLER = "def ok(event, context):\n    return {'statusCode': 200, 'body': event['body'] or 'ok'}\n"

SERVERLESS = """\
service: val
provider:
  name: aws
  stage: dev
  apiGateway:
    request:
      schemas:
        address-model:
          name: Address
          schema:
            type: object
            required: [city]
            properties:
              city: {type: string}
functions:
  ok:
    handler: handler.ok
    events:
      - http:
          path: pets/{id}
          method: post
          request:
            parameters:
              querystrings:
                owner: true
                page: false
              headers:
                X-Trace: {required: true}
              paths:
                id: true
            schemas:
              application/json:
                type: object
                required: [name, age]
                properties:
                  name: {type: string}
                  age: {type: integer}
                  address:
                    $ref: https://apigateway.amazonaws.com/restapis/abc123/models/Address
      - http:
          path: loose
          method: get
          request:
            parameters:
              querystrings:
                q: true
      - http:
          path: named
          method: post
          request:
            schemas:
              application/json: address-model
      - http:
          path: params
          method: get
          reqValidatorName: ParamsOnly
          request:
            parameters:
              querystrings:
                q: true
resources:
  Resources:
    ParamsOnly:
      Type: AWS::ApiGateway::RequestValidator
      Properties:
        Name: params-only
        RestApiId: {Ref: ApiGatewayRestApi}
        ValidateRequestBody: false
        ValidateRequestParameters: true
    BadBody:
      Type: AWS::ApiGateway::GatewayResponse
      Properties:
        ResponseType: BAD_REQUEST_BODY
        RestApiId: {Ref: ApiGatewayRestApi}
        ResponseTemplates:
          application/json: >-
            {"message":$context.error.messageString,"why":"$context.error.validationErrorString"}
"""

GOOD = {"name": "rex", "age": 3, "address": {"city": "Oslo"}}


def project(tmp_path: Path, text: str, name: str = "serverless.yml") -> Path:
    (tmp_path / "handler.py").write_text(HANDLER)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
async def gateway(aiohttp_client: Client, tmp_path: Path) -> TestClient[Any, Any]:
    config = load_config(project(tmp_path, SERVERLESS), env={})
    return await aiohttp_client(create_app(config))


async def test_valid_request_reaches_the_integration(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.post("/dev/pets/1?owner=ann", json=GOOD, headers={"X-Trace": "t"})
    assert resp.status == 200, await resp.text()
    assert json.loads(await resp.text()) == GOOD


async def test_missing_parameters_sorted_as_aws(gateway: TestClient[Any, Any]) -> None:
    # A blank value counts as missing; header before querystring (sorted AWS keys, §7.1).
    resp = await gateway.post("/dev/pets/1?owner=%20", json=GOOD)
    assert resp.status == 400
    assert await resp.text() == '{"message":"Missing required request parameters: [X-Trace, owner]"}'
    assert resp.headers["x-amzn-ErrorType"] == "BadRequestException"


async def test_parameters_are_checked_before_the_body(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.post("/dev/pets/1", data=b"not json", headers={"X-Trace": "t"})
    assert await resp.text() == '{"message":"Missing required request parameters: [owner]"}'


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "[Invalid JSON]"),
        (b"", '[object has missing required properties (["name","age"])]'),
        (
            json.dumps({"name": "rex", "age": "3"}).encode(),
            '[instance type (string) does not match any allowed primitive type (allowed: ["integer"])]',
        ),
        # $ref to another model by AWS's model URL
        (
            json.dumps({"name": "rex", "age": 3, "address": {}}).encode(),
            '[object has missing required properties (["city"])]',
        ),
    ],
)
async def test_invalid_body(gateway: TestClient[Any, Any], body: bytes, why: str) -> None:
    headers = {"X-Trace": "t", "Content-Type": "application/json"}
    resp = await gateway.post("/dev/pets/1?owner=ann", data=body, headers=headers)
    assert resp.status == 400
    assert resp.headers["x-amzn-ErrorType"] == "BadRequestException"
    # Substituted as is (not JSON-escaped), as AWS does: the quotes of the validator's messages
    # make such a template's output invalid JSON there too.
    assert await resp.text() == '{"message":"Invalid request body","why":"' + why + '"}'


async def test_content_type_without_model_is_not_validated(gateway: TestClient[Any, Any]) -> None:
    headers = {"X-Trace": "t", "Content-Type": "text/plain"}
    resp = await gateway.post("/dev/pets/1?owner=ann", data=b"free text", headers=headers)
    assert resp.status == 200
    assert await resp.text() == "free text"


async def test_no_validator_no_check(gateway: TestClient[Any, Any]) -> None:
    # Required parameters without a validator are not enforced (AWS needs a validator).
    resp = await gateway.get("/dev/loose")
    assert resp.status == 200


async def test_named_provider_model(gateway: TestClient[Any, Any]) -> None:
    assert (await gateway.post("/dev/named", json={"city": "Oslo"})).status == 200
    assert (await gateway.post("/dev/named", json={"town": "Oslo"})).status == 400


async def test_request_validator_resource(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.get("/dev/params")
    assert await resp.text() == '{"message":"Missing required request parameters: [q]"}'
    assert (await gateway.get("/dev/params?q=1")).status == 200


def test_unenforced_parameters_are_warned_about(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, SERVERLESS), env={})
    assert any("request.parameters" in w and "not checked" in w for w in config.warnings)


NATIVE = """\
portway: 1
apis:
  - name: pets
    stages: {dev: {}}
    models:
      Pet:
        type: object
        required: [name]
        properties:
          name: {type: string}
    routes:
      POST /pets:
        python: handler.ok
        requestModels: {application/json: Pet}
      GET /pets:
        python: handler.ok
        requestValidator: params-only
        requestParameters:
          method.request.querystring.limit: true
          method.request.header.X-Id: true
"""


async def test_native_format(aiohttp_client: Client, tmp_path: Path) -> None:
    config = load_config(project(tmp_path, NATIVE, "portway.yml"), env={})
    client = await aiohttp_client(create_app(config))
    assert (await client.post("/dev/pets", json={"name": "a"})).status == 200
    resp = await client.post("/dev/pets", json={"name": 1})
    assert (resp.status, await resp.text()) == (400, '{"message":"Invalid request body"}')
    resp = await client.get("/dev/pets")
    assert await resp.text() == '{"message":"Missing required request parameters: [X-Id, limit]"}'
    assert (await client.get("/dev/pets?limit=2", headers={"x-id": "1"})).status == 200


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ("requestModels: {application/json: Pet}", "no model named 'Dog'"),
        ("type: object\n        required", "not a valid JSON Schema (draft 4)"),
    ],
)
def test_native_errors(tmp_path: Path, replace: str, message: str) -> None:
    if "Pet}" in replace:
        text = NATIVE.replace(replace, "requestModels: {application/json: Dog}")
    else:
        text = NATIVE.replace(replace, "type: 7\n        required")
    with pytest.raises(ConfigError) as info:
        load_config(project(tmp_path, text, "portway.yml"), env={})
    assert any(message in issue.message for issue in info.value.issues), info.value.issues


def test_ref_by_bare_model_name_and_default_content_type() -> None:
    from server.config.model import RequestValidation
    from server.errors import BadRequestBody
    from server.messages import HttpRequest
    from server.validation import RouteValidator, model_registry

    models = {"Pet": {"type": "object", "required": ["name"]}}
    schema = {"type": "object", "properties": {"pet": {"$ref": "Pet"}}}
    validation = RequestValidation(models={"$default": schema})
    validator = RouteValidator(validation, model_registry(models), models)

    def request(body: bytes) -> HttpRequest:
        return HttpRequest("POST", "/", "", (("Content-Type", "application/x-thing"),), body, "", "h")

    validator.check(request(b'{"pet": {"name": "a", "extra": {}}}'), {})
    with pytest.raises(BadRequestBody) as info:
        validator.check(request(b'{"pet": {}}'), {})
    assert info.value.validation_error == '[object has missing required properties (["name"])]'


def test_native_websocket_route_models(tmp_path: Path) -> None:
    text = """\
    portway: 1
    apis:
      - name: chat
        type: websocket
        stages: [dev]
        models:
          Join: {type: object, required: [room]}
        routes:
          join:
            python: handler.ok
            modelSelectionExpression: $request.body.kind
            requestModels: {join: Join, $default: {type: object}}
    """
    config = load_config(project(tmp_path, text, "portway.yml"), env={})
    (route,) = config.apis[0].routes
    assert route.validation is not None
    assert route.validation.selection_expression == "$request.body.kind"
    assert set(route.validation.models) == {"join", "$default"}


def test_localstack_recorded_missing_parameters_message() -> None:
    """AWS's recorded answers (localstack/localstack
    tests/aws/services/apigateway/test_apigateway_common.snapshot.json at bf2fc7a2,
    test_api_gateway_request_validator): required header x-header-param, path issuer and query
    string qs1 -> "Missing required request parameters: [x-header-param, issuer, qs1]", and
    "[x-header-param]" / "[qs1]" when only one is missing."""
    from server.config.model import RequestValidation
    from server.errors import BadRequestParameters
    from server.messages import HttpRequest
    from server.validation import RouteValidator, model_registry

    required = (
        "method.request.header.x-header-param",
        "method.request.path.issuer",
        "method.request.querystring.qs1",
    )
    validator = RouteValidator(RequestValidation(required=required), model_registry({}), {})

    def message(query: str, headers: tuple[tuple[str, str], ...], path: dict[str, str]) -> str:
        request = HttpRequest("POST", "/", query, headers, b"", "", "h")
        try:
            validator.check(request, path)
        except BadRequestParameters as error:
            return error.message or ""
        return ""

    assert (
        message("", (), {"issuer": ""})
        == "Missing required request parameters: [x-header-param, issuer, qs1]"
    )
    assert message("qs1=1", (), {"issuer": "i"}) == "Missing required request parameters: [x-header-param]"
    header = (("x-header-param", "v"),)
    assert message("", header, {"issuer": "i"}) == "Missing required request parameters: [qs1]"
    assert message("qs1=1", header, {"issuer": "i"}) == ""


@pytest.mark.parametrize(
    ("model", "body", "valid"),
    [
        ("testSchemaList", [{"a": 1, "b": 2}, {"a": 3.5, "b": 0}], True),
        ("testSchemaList", [{"a": 1}], False),
        ("TestModel", {"status": None}, True),
        ("TestModel", {"status": {"Status": "done", "Order": 1}}, True),
        ("TestModel", {}, False),
        ("TestModel", {"status": {"Status": 1, "Order": 1}}, False),
    ],
)
def test_localstack_recorded_ref_models(model: str, body: Any, valid: bool) -> None:
    """The models of LocalStack's AWS-validated snapshots (test_apigateway_common.snapshot.json at
    bf2fc7a2: test_api_gateway_request_validator_with_ref_models and ..._with_ref_one_ofmodels):
    `$ref` by AWS's model URL, inside `items` and inside `oneOf`; AWS answered "ok" for valid
    bodies and 400 "Invalid request body" otherwise."""
    from server.config.model import RequestValidation
    from server.errors import BadRequestBody
    from server.messages import HttpRequest
    from server.validation import RouteValidator, model_registry

    url = "https://apigateway.amazonaws.com/restapis/abc123/models/"
    models: dict[str, Any] = {
        "testSchema": {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "title": "testSchema",
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
        "testSchemaList": {"type": "array", "items": {"$ref": url + "testSchema"}},
        "StatusModel": {
            "type": "object",
            "properties": {"Status": {"type": "string"}, "Order": {"type": "integer"}},
            "required": ["Status", "Order"],
        },
        "TestModel": {
            "type": "object",
            "properties": {"status": {"oneOf": [{"type": "null"}, {"$ref": url + "StatusModel"}]}},
            "required": ["status"],
        },
    }
    validation = RequestValidation(models={"application/json": models[model]})
    validator = RouteValidator(validation, model_registry(models), models)
    request = HttpRequest("POST", "/", "", (), json.dumps(body).encode(), "", "h")
    if valid:
        validator.check(request, {})
    else:
        with pytest.raises(BadRequestBody):
            validator.check(request, {})

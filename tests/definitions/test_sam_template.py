"""An AWS SAM template served end to end: a REST API (explicit, with an API key requirement, and
SAM's implicit one), the implicit HTTP API, one function, and a WebSocket API declared as
``AWS::ApiGatewayV2`` resources (``tests/fixtures/sam``, laid out as ``sam init`` lays it out)."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import ApiKeyConfig, ApiKind, PlanStage, UsagePlanConfig
from server.ids import new_api_id

SAM = Path(__file__).resolve().parents[1] / "fixtures" / "sam" / "template.yaml"
Client = Callable[..., Awaitable[TestClient[Any, Any]]]
KEY = "samKey0123456789abcdefgh"


async def test_sam_template_serves_rest_http_and_websocket_apis(aiohttp_client: Client) -> None:
    config = load_config(SAM)
    assert config.warnings == (
        "Resources.HelloWorldFunction.Properties.Events.Nightly.Type: event type 'Schedule' is not "
        "served by Portway (ignored)",
        "Resources.Queue: AWS::SQS::Queue is not served by Portway",
    )
    apis = {api.name: api for api in config.apis}
    assert {name: (api.kind, api.stages[0].name) for name, api in apis.items()} == {
        "pets-api": (ApiKind.REST, "v1"),
        "sam-ServerlessRestApi": (ApiKind.REST, "Prod"),
        "sam-ServerlessHttpApi": (ApiKind.HTTP, "$default"),
        "chat": (ApiKind.WEBSOCKET, "live"),
    }
    pets = apis["pets-api"]
    plan = UsagePlanConfig("p", "p", (PlanStage(pets.id, "v1"),))
    config = dataclasses.replace(
        config, usage_plans=(plan,), api_keys=(ApiKeyConfig("k", KEY, plans=("p",)),)
    )
    client = await aiohttp_client(create_app(config))

    hello = await client.get("/Prod/hello")
    assert hello.status == 200, await hello.text()
    assert await hello.json() == {
        "message": "hello",  # Globals: !Ref of the parameter's Default
        "path": "/hello",
        "version": "1.0",
        "params": None,
        "api": new_api_id("pets-api"),  # !Ref PetsApi: the id Portway serves it under
        "self": "us-east-1:HelloWorldFunction",  # !Sub of a pseudo parameter and the function
        "function": "HelloWorldFunction",
    }
    http = await client.get("/hello/world")
    assert http.status == 200
    body = await http.json()
    assert (body["version"], body["path"], body["params"]) == ("2.0", "/hello/world", {"name": "world"})

    assert (await client.delete("/v1/pets/3")).status == 403
    keyed = await client.delete("/v1/pets/3", headers={"x-api-key": KEY})
    assert keyed.status == 200
    assert (await keyed.json())["params"] == {"id": "3"}

    async with client.ws_connect("/live") as ws:
        await ws.send_json({"action": "echo", "text": "hi"})
        assert await ws.receive_str(timeout=20) == "echo:hi"


def test_a_function_event_naming_an_undefined_authorizer_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return {}\n")
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
                    DefaultAuthorizer: Missing
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: src
                  Handler: app.handler
                  Events:
                    Get:
                      Type: Api
                      Properties: {RestApiId: !Ref Api, Path: /x, Method: get}
            """
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "template.yaml")
    assert [(i.location, i.message) for i in info.value.issues] == [
        (
            "Resources.Fn.Properties.Events.Get.Properties.Auth.Authorizer",
            "authorizer 'Missing' is not declared in the API's Auth.Authorizers",
        )
    ]


def test_globals_api_settings_and_conditions_are_reported_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """\
            Transform: AWS::Serverless-2016-10-31
            Conditions:
              IsProd: !Equals [!Ref AWS::AccountId, "1"]
            Globals:
              Api:
                BinaryMediaTypes: ["image~1png"]
            Resources:
              Fn:
                Type: AWS::Serverless::Function
                Condition: IsProd
                Properties:
                  CodeUri: .
                  Handler: app.handler
                  Events:
                    Get: {Type: Api, Properties: {Path: /x, Method: get}}
            """
        )
    )
    config = load_config(tmp_path / "template.yaml")
    assert config.warnings == (
        "Resources.Fn.Condition: condition 'IsProd' is not evaluated: the resource is served as if it held",
    )
    (api,) = config.apis
    assert (api.stages[0].name, api.binary_media_types) == ("Prod", ("image/png",))


async def test_definition_body_and_uri_are_served(tmp_path: Path, aiohttp_client: Client) -> None:
    (tmp_path / "app.py").write_text(
        "def handler(event, context):\n    return {'statusCode': 200, 'body': event['resource']}\n"
    )
    (tmp_path / "openapi.yaml").write_text(
        textwrap.dedent(
            """\
            openapi: 3.0.1
            info: {title: from-file}
            paths:
              /file:
                get:
                  x-amazon-apigateway-integration:
                    type: mock
                    requestTemplates: {application/json: '{"statusCode": 200}'}
                    responses: {default: {statusCode: "200", responseTemplates: {text/plain: from file}}}
            """
        )
    )
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """\
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Inline:
                Type: AWS::Serverless::Api
                Properties:
                  StageName: a
                  DefinitionBody:
                    openapi: 3.0.1
                    info: {title: inline}
                    paths:
                      /items/{id}:
                        get:
                          x-amazon-apigateway-integration:
                            type: aws_proxy
                            httpMethod: POST
                            uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/\
                              functions/${Fn.Arn}/invocations"
              FromFile:
                Type: AWS::Serverless::Api
                Properties: {StageName: b, DefinitionUri: openapi.yaml}
              Fn:
                Type: AWS::Serverless::Function
                Properties: {CodeUri: ., Handler: app.handler}
            """
        )
    )
    config = load_config(tmp_path / "template.yaml")
    assert config.warnings == ()
    client = await aiohttp_client(create_app(config))
    inline = await client.get("/a/items/1")
    assert (inline.status, await inline.text()) == (200, "/items/{id}")
    from_file = await client.get("/b/file")
    assert (from_file.status, await from_file.text()) == (200, "from file")


def test_parameters_without_default_are_bound_or_reported(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """\
            Transform: AWS::Serverless-2016-10-31
            Parameters:
              Stage: {Type: String}
            Resources:
              Api:
                Type: AWS::Serverless::Api
                Properties: {StageName: !Ref Stage}
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: .
                  Handler: app.handler
                  Events:
                    Get: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /x, Method: get}}
            """
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "template.yaml")
    assert [(i.location, i.message) for i in info.value.issues] == [
        (
            "Resources.Api.Properties.StageName",
            "this stage name cannot be resolved locally (a value only AWS knows)",
        )
    ]
    (tmp_path / "bindings.yaml").write_text("parameters: {Stage: qa}\n")
    config = load_config(tmp_path / "template.yaml", bindings=tmp_path / "bindings.yaml")
    assert config.apis[0].stages[0].name == "qa"

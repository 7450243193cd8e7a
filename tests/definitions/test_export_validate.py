"""``portway export`` (a served API -> OpenAPI 3 with the extensions, served back unchanged) and
``portway validate`` on AWS-format documents (every unsupported construct named with its location)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from server.cli import main
from server.config.load import load_config
from server.config.model import GatewayConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


def shape(config: GatewayConfig) -> list[tuple[object, ...]]:
    return [
        (
            api.name,
            api.kind,
            api.stages[0].name,
            route.route_key,
            route.api_key_required,
            route.integration.type,
            route.integration.uri,
            route.integration.handler,
            route.integration.code_dir,
            route.integration.function_name,
            route.integration.mock,
            route.integration.timeout_ms,
            route.integration.payload_format,
            route.authorizer.type if route.authorizer else None,
        )
        for api in config.apis
        for route in api.routes
    ]


def test_export_of_the_petstore_import_serves_the_same_routes(tmp_path: Path) -> None:
    bindings = tmp_path / "bindings.yaml"
    bindings.write_text(
        textwrap.dedent(
            f"""\
            functions:
              AdoptPet: {{handler: adopt.handler, codeUri: {FIXTURES / "openapi" / "src"}}}
            """
        )
    )
    out = tmp_path / "out" / "exported.yaml"
    out.parent.mkdir()
    source = FIXTURES / "openapi" / "petstore.yaml"
    assert main(["export", str(source), "--bindings", str(bindings), "-o", str(out)]) == 0
    document = yaml.safe_load(out.read_text())
    function = document["x-portway"]["functions"]["AdoptPet"]
    assert function["handler"] == "adopt.handler"
    assert (out.parent / function["codeUri"]).resolve() == FIXTURES / "openapi" / "src"
    assert document["paths"]["/adopt/{petId}"]["x-amazon-apigateway-any-method"]["security"] == [
        {"api_key": []}
    ]
    assert shape(load_config(out)) == shape(load_config(source, bindings=bindings))


@pytest.mark.parametrize("name", ["portway.yaml", "serverless.yml"])
def test_export_of_the_bundled_example_serves_the_same_routes(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(EXAMPLE / name, env={})
    for api in config.apis:
        out = tmp_path / f"{api.kind.value}.yaml"
        code = main(["export", str(EXAMPLE / name), "--api", api.name, "-o", str(out)])
        if api.kind.value == "WEBSOCKET":
            assert code == 2 and "WebSocket APIs have no OpenAPI form" in capsys.readouterr().err
            continue
        assert code == 0
        exported = load_config(out)
        original = GatewayConfig(apis=(api,))
        strip = [row[1:] for row in shape(original)]  # the exported API keeps its name
        assert [row[1:] for row in shape(exported)] == strip


def test_validate_names_every_unsupported_construct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            swagger: "2.0"
            info: {title: legacy}
            basePath: /prod
            x-amazon-apigateway-request-validators:
              all: {validateRequestBody: true, validateRequestParameters: true}
            x-amazon-apigateway-request-validator: all
            x-amazon-apigateway-gateway-responses:
              DEFAULT_4XX: {statusCode: 400}
            paths:
              /items:
                get:
                  x-amazon-apigateway-integration:
                    type: http
                    uri: https://backend.example.com/items
                    httpMethod: GET
                    requestTemplates: {application/json: '{"q": "$input.params(''q'')"}'}
                    cacheKeyParameters: [method.request.querystring.q]
                post:
                  x-amazon-apigateway-integration:
                    type: aws
                    uri: arn:aws:apigateway:us-east-1:sqs:path/123456789012/queue
                delete:
                  security: [{corp: []}]
                  x-amazon-apigateway-integration: {type: mock}
              /open:
                get: {responses: {}}
            securityDefinitions:
              corp: {type: oauth2, flow: implicit, authorizationUrl: https://idp.example.com}
            """
        )
    )
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    expected = [
        'paths["/items"].post.x-amazon-apigateway-integration.type: AWS service (and non-proxy Lambda) '
        "integrations are not supported yet; use aws_proxy",
        "securitySchemes.corp: a security scheme Portway cannot enforce",
        'paths["/open"].get.x-amazon-apigateway-integration: no integration: AWS refuses to deploy a method '
        "without one",
    ]
    for line in expected:
        assert line in err
    assert "4 error(s)" not in err and "3 error(s)" in err
    # Warnings are only printed once the errors are gone: fix them and look again.
    text = path.read_text().replace("type: aws\n", "type: mock\n").replace("security: [{corp: []}]\n", "")
    path.write_text(text.replace("  /open:\n    get: {responses: {}}\n", ""))
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    for line in [
        "x-amazon-apigateway-request-validators: request validation is not enforced yet",
        "x-amazon-apigateway-request-validator: request validation is not enforced yet",
        "x-amazon-apigateway-gateway-responses: custom gateway responses are not supported yet",
        'paths["/items"].get.x-amazon-apigateway-integration.requestTemplates: mapping templates are not '
        "applied yet: passed through",
        'paths["/items"].get.x-amazon-apigateway-integration.cacheKeyParameters: integration setting '
        "'cacheKeyParameters' is not supported (ignored)",
    ]:
        assert line in err, err

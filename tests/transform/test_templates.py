"""Mapping templates, parameter mapping and integration responses (reference §7.2-§7.5) on REST
HTTP (non-proxy) and MOCK integrations, end to end on port 0 with a real aiohttp backend.

Expected values follow AWS's documented behaviour as recorded in
shared/reference/aws-api-gateway.md: §7.2 (template selection; passthrough table: 415
``Unsupported Media Type``), §7.3 (``$input.path`` of an object prints Java's ``{key=value}``,
``$input.json`` is JSON text, ``$input.params(x)`` searches path, query string, header;
``$util.escapeJavaScript`` escapes ``'``), §7.4 (parameter sources and targets), §7.5 (selection
by status regex, default response, no match -> 500).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config
from server.transform.vtl import Input, Template

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def backend() -> AsyncIterator[TestServer]:
    async def echo(request: web.Request) -> web.Response:
        status = int(request.query.get("status", "200"))
        return web.json_response(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": {k: v for k, v in request.headers.items() if k.lower().startswith("x-")},
                "contentType": request.headers.get("Content-Type"),
                "body": await request.text(),
                "items": [{"id": 1}, {"id": 2}],
            },
            status=status,
            headers={"X-Backend": "b1"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, port=0)
    await server.start_server()
    yield server
    await server.close()


NATIVE = """\
portway: 1
apis:
  - name: shop
    stages: {dev: {variables: {color: blue}}}
    routes:
      POST /orders/{id}:
        http:
          uri: http://127.0.0.1:PORT/backend/{id}
          method: POST
          requestTemplates:
            application/json: |
              #set($o = $input.path('$'))
              {"order": "$input.params('id')", "qty": $input.json('$.qty'), "all": "$o",
               "n": $o.items.size(), "stage": "$context.stage", "color": "$stageVariables.color"}
          passthroughBehavior: when_no_templates
          requestParameters:
            integration.request.header.X-Order: method.request.path.id
            integration.request.header.X-Static: "'fixed'"
            integration.request.querystring.src: method.request.header.X-Source
            integration.request.querystring.stage: context.stage
            integration.request.querystring.status: method.request.querystring.status
            integration.request.path.id: method.request.querystring.real
          responses:
            "2\\\\d\\\\d":
              statusCode: 201
              responseParameters:
                method.response.header.X-From: integration.response.header.X-Backend
                method.response.header.X-First: integration.response.body.items[0].id
              responseTemplates:
                application/json: >-
                  {"sent": $input.json('$.body'), "path": "$input.path('$.path')",
                  "h": $input.json('$.headers')}
            "4\\\\d\\\\d":
              statusCode: 400
              responseTemplates:
                application/json: '{"error": "bad"}'
      GET /strict:
        http:
          uri: http://127.0.0.1:PORT/strict
          passthroughBehavior: never
      GET /nomatch:
        http:
          uri: http://127.0.0.1:PORT/nomatch
          responses:
            "2\\\\d\\\\d": {statusCode: 200}
      POST /mock:
        mock:
          requestTemplates:
            application/json: '{"statusCode": $input.json(''$.code'')}'
          responses:
            default:
              statusCode: 200
              responseTemplates:
                application/json: '{"ok": true, "id": "$context.requestId"}'
            "5\\\\d\\\\d":
              statusCode: 503
              responseParameters:
                method.response.header.Retry-After: "'30'"
              responseTemplates:
                application/json: '{"ok": false}'
"""


@pytest.fixture
async def gateway(aiohttp_client: Client, backend: TestServer, tmp_path: Path) -> TestClient[Any, Any]:
    path = tmp_path / "portway.yml"
    path.write_text(NATIVE.replace("PORT", str(backend.port)))
    return await aiohttp_client(create_app(load_config(path, env={})))


async def test_request_template_and_parameter_mapping(gateway: TestClient[Any, Any]) -> None:
    body = {"qty": 3, "items": ["a", "b"]}
    resp = await gateway.post(
        "/dev/orders/7?real=9", json=body, headers={"X-Source": "web", "X-Dropped": "1"}
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["X-From"] == "b1"
    assert resp.headers["X-First"] == "1"
    assert resp.headers["Content-Type"] == "application/json"
    out = json.loads(await resp.text())
    sent = json.loads(out["sent"])
    assert sent == {
        "order": "7",
        "qty": 3,
        "all": "{qty=3, items=[a, b]}",  # Java's map and list printing (§7.3)
        "n": 2,
        "stage": "dev",
        "color": "blue",
    }
    # integration.request.path.id from the query string; only mapped headers and query values.
    assert out["path"] == "/backend/9"
    sent_headers = out["h"]
    assert (sent_headers["X-Order"], sent_headers["X-Static"]) == ("7", "fixed")
    assert "X-Dropped" not in sent_headers and "X-Source" not in sent_headers
    # The gateway's own headers still go (reference §0.2).
    assert "X-Amzn-Apigateway-Api-Id" in sent_headers


async def test_passthrough_when_no_templates_refuses_other_types(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.post("/dev/orders/7", data=b"a=b", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    assert await resp.text() == '{"message":"Unsupported Media Type"}'
    resp = await gateway.get("/dev/strict")  # NEVER with no templates at all
    assert resp.status == 415


async def test_response_selected_by_status_regex(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.post("/dev/orders/7?status=404", json={"qty": 1})
    assert resp.status == 400
    assert json.loads(await resp.text()) == {"error": "bad"}
    assert "X-Backend" not in resp.headers  # non-proxy: only mapped headers reach the client


async def test_no_matching_response_and_no_default_is_500(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.get("/dev/nomatch?status=500")
    assert resp.status == 500
    assert await resp.text() == '{"message": "Internal server error"}'


async def test_mock_status_from_the_request_template(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.post("/dev/mock", json={"code": 200})
    assert resp.status == 200
    assert json.loads(await resp.text()) == {"ok": True, "id": resp.headers["x-amzn-RequestId"]}
    resp = await gateway.post("/dev/mock", json={"code": 503})
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "30"
    assert json.loads(await resp.text()) == {"ok": False}


def test_input_params_search_order_and_util() -> None:
    params = {"path": {"a": "p"}, "querystring": {"a": "q", "b": "q"}, "header": {"B": "h", "C": "h"}}
    template = Template(
        "$input.params('a') $input.params('b') $input.params('c') $util.urlEncode('a b&c') "
        "$util.base64Encode('hi') $util.base64Decode('aGk=') $util.parseJson('{\"k\":[1,2]}').k.size() "
        '$input.body $util.escapeJavaScript("it\'s """)'
    )
    expected = "p q h a+b%26c aGk= hi 2 raw it\\'s \\\""  # ' escaped as \' (§7.3)
    assert template.render({"input": Input("raw", params)}) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("passthroughBehavior: sometimes", "does not match"),
        ("requestTemplates: {application/json: '#foreach($x in)'}", "template does not parse"),
        ("requestParameters: {integration.request.body: 'x'}", "a target is integration.request"),
    ],
)
def test_native_errors(tmp_path: Path, fields: str, message: str) -> None:
    text = f"""\
    portway: 1
    apis:
      - name: a
        routes:
          GET /x:
            http:
              uri: http://127.0.0.1:1/x
              {fields}
    """
    path = tmp_path / "portway.yml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert any(message in issue.message for issue in info.value.issues), info.value.issues


@pytest.mark.parametrize(("override", "status"), [("500", 500), ("600", 300), ("'abc'", 300), ("99", 300)])
def test_response_override_status(override: str, status: int) -> None:
    """`#set($context.responseOverride.status = N)` wins over the integration response's status
    only for an integer from 100 to 599 (reference §7.3, citing AWS via LocalStack's tests)."""
    from server.config.model import IntegrationResponseConfig, frozen_map
    from server.events import RequestInfo
    from server.messages import HttpRequest, HttpResponse
    from server.transform.response import ResponseTransform

    template = (
        f"#set($context.responseOverride.status = {override})\n"
        "#set($context.responseOverride.header.X-O = 'v')ok"
    )
    transform = ResponseTransform(
        (IntegrationResponseConfig(300, None, templates=frozen_map({"application/json": template})),)
    )
    request = HttpRequest("GET", "/", "", (), b"", "", "h")
    info = RequestInfo(request, "a", "1", "dev", "/dev", "/", "/", "GET /", {}, {}, "r", "e", 0)
    response = transform.apply(info, HttpResponse(200, [], b"{}"))
    assert (response.status, response.body) == (status, b"ok")
    assert response.header("X-O") == "v"


def test_request_override_sets_a_path_parameter() -> None:
    """`#set($context.requestOverride.path.object = $input.params('id'))` (a common S3 proxy
    template) renames the backend's path parameter."""
    from server.config.model import IntegrationConfig, IntegrationType, frozen_map
    from server.events import RequestInfo
    from server.messages import HttpRequest
    from server.transform.request import RequestTransform

    integration = IntegrationConfig(
        IntegrationType.HTTP,
        uri="http://x/{object}",
        request_templates=frozen_map(
            {"application/json": "#set($context.requestOverride.path.object = $input.params('id'))"}
        ),
    )
    request = HttpRequest("GET", "/dev/w/7", "", (), b"", "", "h")
    info = RequestInfo(
        request, "a", "1", "dev", "/dev", "/w/7", "/w/{id}", "GET /w/{id}", {"id": "7"}, {}, "r", "e", 0
    )
    assert RequestTransform(integration).apply(info).path_parameters == {"id": "7", "object": "7"}


def test_content_handling() -> None:
    """contentHandling (reference §7.6): CONVERT_TO_TEXT base64-encodes a binary request body,
    CONVERT_TO_BINARY decodes a text response body; a failed decode is AWS's 500."""
    from server.config.model import IntegrationConfig, IntegrationResponseConfig, IntegrationType
    from server.errors import ApiConfigurationError
    from server.events import RequestInfo
    from server.messages import HttpRequest, HttpResponse
    from server.transform.request import RequestTransform
    from server.transform.response import ResponseTransform

    png = b"\x89PNG\r\n\x1a\n\x00"
    request = HttpRequest("POST", "/dev/up", "", (("Content-Type", "image/png"),), png, "", "h")
    info = RequestInfo(
        request, "a", "1", "dev", "/dev", "/up", "/up", "POST /up", {}, {}, "r", "e", 0, ("image/png",)
    )
    to_text = IntegrationConfig(IntegrationType.HTTP, uri="http://x/", content_handling="CONVERT_TO_TEXT")
    assert RequestTransform(to_text).apply(info).request.body == b"iVBORw0KGgoA"

    to_binary = ResponseTransform((IntegrationResponseConfig(200, content_handling="CONVERT_TO_BINARY"),))
    backend = HttpResponse(200, [("Content-Type", "application/json")], b"iVBORw0KGgoA")
    assert to_binary.apply(info, backend).body == png
    with pytest.raises(ApiConfigurationError):
        to_binary.apply(info, HttpResponse(200, [("Content-Type", "application/json")], b"not base64!"))

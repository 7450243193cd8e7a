"""CORS (reference §9; DG:how-to-cors, DG:http-api-cors), end to end on port 0.

REST: ``cors: true`` deploys an OPTIONS MOCK method (as Serverless does) that answers the
preflight; proxy integrations' responses carry only what the backend sends. HTTP APIs: the
gateway answers preflights itself (204, no route needed), sets the configured headers on every
response and drops the backend's CORS headers.
"""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import CorsConfig
from server.cors import CorsPolicy

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

HANDLER = """\
def ok(event, context):
    return {'statusCode': 200, 'body': 'ok', 'headers': {'Access-Control-Allow-Origin': 'https://evil.example'}}
"""

SERVERLESS = """\
service: cors
provider:
  name: aws
  stage: dev
  httpApi:
    cors:
      allowedOrigins: [https://app.example]
      allowedHeaders: [Content-Type, X-Trace]
      exposedResponseHeaders: [X-Request-Cost]
      allowCredentials: true
      maxAge: 600
functions:
  ok:
    handler: handler.ok
    events:
      - httpApi: GET /items
      - httpApi: POST /items
      - http:
          path: legacy
          method: get
          cors: true
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


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


async def test_http_api_preflight_without_an_options_route(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.options("/items", headers=PREFLIGHT)
    assert resp.status == 204
    assert resp.headers["access-control-allow-origin"] == "https://app.example"
    assert resp.headers["access-control-allow-methods"] == "GET,OPTIONS,POST"
    assert resp.headers["access-control-allow-headers"] == "content-type,x-trace"
    assert resp.headers["access-control-max-age"] == "600"
    assert resp.headers["access-control-allow-credentials"] == "true"
    assert "apigw-requestid" in resp.headers


async def test_http_api_preflight_from_another_origin(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.options("/items", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert resp.status == 204
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


async def test_http_api_responses_get_the_configured_headers(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.get("/items", headers={"Origin": "https://app.example"})
    assert resp.status == 200
    # The backend's own CORS header is dropped (reference §9).
    assert resp.headers.getall("access-control-allow-origin") == ["https://app.example"]
    assert resp.headers["access-control-expose-headers"] == "x-request-cost"
    assert resp.headers["access-control-allow-credentials"] == "true"
    # Without Origin the response is the backend's as is.
    resp = await gateway.get("/items")
    assert resp.headers["Access-Control-Allow-Origin"] == "https://evil.example"


async def test_errors_carry_the_headers_too(gateway: TestClient[Any, Any]) -> None:
    resp = await gateway.get("/nowhere", headers={"Origin": "https://app.example"})
    assert resp.status == 404
    assert resp.headers["access-control-allow-origin"] == "https://app.example"


async def test_rest_preflight_is_the_mock_options_method(gateway: TestClient[Any, Any]) -> None:
    # Serverless's OPTIONS MOCK method for `cors: true` (console defaults, reference §9).
    resp = await gateway.options("/dev/legacy", headers={"Origin": "https://x.example"})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Access-Control-Allow-Methods"] == "OPTIONS,GET"
    assert "X-Amz-Date" in resp.headers["Access-Control-Allow-Headers"]


def test_cors_true_takes_serverless_defaults(tmp_path: Path) -> None:
    text = SERVERLESS.replace(
        """    cors:
      allowedOrigins: [https://app.example]
      allowedHeaders: [Content-Type, X-Trace]
      exposedResponseHeaders: [X-Request-Cost]
      allowCredentials: true
      maxAge: 600
""",
        "    cors: true\n",
    )
    config = load_config(project(tmp_path, text), env={})
    (cors,) = [api.cors for api in config.apis if api.cors is not None]
    assert cors.allow_origins == ("*",)
    assert cors.allow_methods == ("GET", "OPTIONS", "POST")
    assert "X-Amzn-Trace-Id" in cors.allow_headers


def test_wildcard_origin_and_methods() -> None:
    policy = CorsPolicy(CorsConfig(allow_origins=("*",), allow_methods=("*",)))
    response = policy.preflight("https://any.example", "DELETE")
    assert response.header("access-control-allow-origin") == "*"


def test_native_cors_and_its_errors(tmp_path: Path) -> None:
    native = """\
    portway: 1
    apis:
      - name: items
        type: http
        cors: {allowOrigins: ['*'], allowMethods: [GET], allowCredentials: true}
        routes:
          GET /items: handler.ok
    """
    with pytest.raises(ConfigError) as info:
        load_config(project(tmp_path, native, "portway.yml"), env={})
    assert [issue.message for issue in info.value.issues] == [
        "allowCredentials cannot be used with the origin '*'"
    ]
    config = load_config(
        project(tmp_path, native.replace(", allowCredentials: true", ""), "portway.yml"), env={}
    )
    assert config.apis[0].cors == CorsConfig(allow_origins=("*",), allow_methods=("GET",))

"""End to end: a real gateway on port 0, driven by aiohttp's client (aws-contract.md §0, §2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from server.app import create_app
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    Isolation,
    MockResponse,
    RouteConfig,
    StageConfig,
    frozen_map,
)

HANDLERS = Path(__file__).parent / "handlers"


def python(
    handler: str,
    *,
    isolation: Isolation = Isolation.INPROCESS,
    timeout_ms: int = 29_000,
    payload: str = "1.0",
    env: dict[str, str] | None = None,
) -> IntegrationConfig:
    return IntegrationConfig(
        type=IntegrationType.PYTHON,
        handler=f"app_handlers.{handler}",
        code_dir=HANDLERS,
        function_name=handler,
        isolation=isolation,
        timeout_ms=timeout_ms,
        payload_format=payload,
        environment=frozen_map(env),
    )


def route(key: str, integration: IntegrationConfig) -> RouteConfig:
    method, _, path = key.partition(" ")
    return RouteConfig(method=method, path=path, integration=integration)


def rest_api(
    name: str,
    routes: list[RouteConfig],
    *,
    base_path: str = "",
    max_body: int = 10 * 1024 * 1024,
    stages: tuple[StageConfig, ...] | None = None,
) -> ApiConfig:
    return ApiConfig(
        name=name,
        id=f"{name}id",
        kind=ApiKind.REST,
        stages=stages
        or (
            StageConfig("dev", frozen_map({"color": "blue"})),
            StageConfig("prod", frozen_map({"color": "red"})),
        ),
        routes=tuple(routes),
        base_path=base_path,
        binary_media_types=("image/png",),
        max_body_bytes=max_body,
    )


def backend_uri(port: int) -> str:
    return f"http://127.0.0.1:{port}/backend/{{proxy}}"


@pytest.fixture
async def backend() -> AsyncIterator[TestServer]:
    async def echo(request: web.Request) -> web.Response:
        delay = float(request.query.get("delay", "0"))
        if delay:
            await asyncio.sleep(delay)
        return web.json_response(
            {
                "path": request.path,
                "query": request.query_string,
                "method": request.method,
                "body": (await request.text()),
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, port=0)
    await server.start_server()
    yield server
    await server.close()


Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def gateway(aiohttp_client: Client, backend: TestServer) -> TestClient[Any, Any]:
    assert backend.port is not None
    dead_port = _unused_port()
    pets = rest_api(
        "pets",
        [
            route(
                "GET /",
                IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(200, body='{"root":1}')),
            ),
            route("GET /echo/{id}", python("echo")),
            route("ANY /{proxy+}", python("echo")),
            route("GET /async", python("async_echo")),
            route("POST /shaped", python("shaped")),
            route("GET /boom", python("boom")),
            route("GET /slow", python("slow", timeout_ms=300)),
            route("GET /crash", python("crash", isolation=Isolation.PROCESS)),
            route("GET /isolated", python("echo", isolation=Isolation.PROCESS, env={"GREETING": "hi"})),
            route(
                "GET /mock",
                IntegrationConfig(
                    type=IntegrationType.MOCK,
                    mock=MockResponse(201, frozen_map({"X-Mock": "yes"}), '{"mocked":true}'),
                ),
            ),
            route(
                "ANY /proxy/{proxy+}",
                IntegrationConfig(
                    type=IntegrationType.HTTP_PROXY, uri=backend_uri(backend.port), timeout_ms=300
                ),
            ),
            route(
                "GET /down",
                IntegrationConfig(
                    type=IntegrationType.HTTP_PROXY, uri=f"http://127.0.0.1:{dead_port}/", timeout_ms=2000
                ),
            ),
        ],
        max_body=1024,
    )
    v1 = rest_api(
        "v1",
        [
            route(
                "GET /version",
                IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(200, body='"v1"')),
            )
        ],
        base_path="v1",
    )
    v2 = rest_api(
        "v2",
        [
            route(
                "GET /version",
                IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(200, body='"v2"')),
            )
        ],
        base_path="v2",
    )
    config = GatewayConfig(apis=(pets, v1, v2))
    return await aiohttp_client(create_app(config))


def _unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def raw(client: TestClient[Any, Any], method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
    """Send a request whose path is exactly `path` (no client-side normalisation)."""
    url = URL(f"http://{client.host}:{client.port}{path}", encoded=True)
    return await client.session.request(method, url, **kwargs)


async def event_of(client: TestClient[Any, Any], path: str, **kwargs: Any) -> dict[str, Any]:
    resp = await raw(client, kwargs.pop("method", "GET"), path, **kwargs)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = json.loads(await resp.text())
    return data


async def test_every_response_has_request_ids(gateway: TestClient[Any, Any]) -> None:
    for path in ("/dev/", "/dev/mock", "/nope/x", "/dev/boom"):
        resp = await raw(gateway, "GET", path)
        assert len(resp.headers["x-amzn-RequestId"]) == 36
        assert resp.headers["x-amz-apigw-id"].endswith("=")


async def test_missing_route_is_403_missing_authentication_token(gateway: TestClient[Any, Any]) -> None:
    for method, path in (("GET", "/unknownstage/x"), ("HEAD", "/dev/mock"), ("PATCH", "/dev/mock")):
        resp = await raw(gateway, method, path)
        assert resp.status == 403
        assert resp.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        if method != "HEAD":
            assert await resp.read() == b'{"message":"Missing Authentication Token"}'


async def test_missing_route_with_bearer_token_is_incomplete_signature(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "GET", "/nostage/x", headers={"Authorization": "Bearer abc"})
    assert resp.status == 403
    assert resp.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"
    body = await resp.json()
    assert body["message"].startswith("Invalid key=value pair (missing equal-sign) in Authorization header")


async def test_mock_integration(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "GET", "/dev/mock")
    assert resp.status == 201 and resp.headers["X-Mock"] == "yes"
    assert await resp.json() == {"mocked": True}
    assert "X-Amzn-Trace-Id" not in resp.headers  # absent on MOCK (aws-contract.md §0.2)


async def test_v1_event_through_the_gateway(gateway: TestClient[Any, Any]) -> None:
    data = await event_of(gateway, "/dev/echo/a%2Bb?x=1&x=2&p=a+b&q=a%2Bb&flag", headers={"X-Custom": "v"})
    event = data["event"]
    assert event["resource"] == "/echo/{id}"
    assert event["path"] == "/echo/a%2Bb"
    assert event["pathParameters"] == {"id": "a%2Bb"}
    assert event["queryStringParameters"] == {"x": "2", "p": "a b", "q": "a+b", "flag": ""}
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
    assert event["headers"]["X-Custom"] == "v"
    assert event["stageVariables"] == {"color": "blue"}
    assert event["requestContext"]["path"] == "/dev/echo/a%2Bb"
    assert event["requestContext"]["stage"] == "dev"
    assert event["body"] is None
    assert data["function_name"] == "echo"
    assert 0 < data["remaining_ms"] <= 29_000


async def test_trailing_and_double_slashes(gateway: TestClient[Any, Any]) -> None:
    event = (await event_of(gateway, "/dev/proxy-value//double-slash/"))["event"]
    assert event["path"] == "/proxy-value//double-slash/"
    assert event["pathParameters"] == {"proxy": "proxy-value//double-slash"}
    assert event["resource"] == "/{proxy+}"


async def test_stages_have_their_own_variables(gateway: TestClient[Any, Any]) -> None:
    prod = (await event_of(gateway, "/prod/echo/1"))["event"]
    assert prod["stageVariables"] == {"color": "red"}
    assert prod["requestContext"]["stage"] == "prod"


async def test_versions_side_by_side(gateway: TestClient[Any, Any]) -> None:
    assert await (await raw(gateway, "GET", "/dev/v1/version")).json() == "v1"
    assert await (await raw(gateway, "GET", "/dev/v2/version")).json() == "v2"
    # The unversioned API still serves everything else under the same stage.
    assert (await raw(gateway, "GET", "/dev/mock")).status == 201


async def test_async_handler(gateway: TestClient[Any, Any]) -> None:
    assert (await event_of(gateway, "/dev/async"))["event"]["resource"] == "/async"


async def test_post_body_and_binary(gateway: TestClient[Any, Any]) -> None:
    event = (await event_of(gateway, "/dev/anything", method="POST", data=b"hello"))["event"]
    assert event["body"] == "hello" and event["isBase64Encoded"] is False
    png = (
        await event_of(
            gateway, "/dev/img", method="PUT", data=b"\x89PNG", headers={"Content-Type": "image/png"}
        )
    )["event"]
    assert png["isBase64Encoded"] is True and png["body"] == "iVBORw=="


@pytest.mark.parametrize(
    ("result", "status", "body"),
    [
        ({"statusCode": 200, "wrongValue": "x"}, 502, b'{"message": "Internal server error"}'),
        ("justAString", 502, b'{"message": "Internal server error"}'),
        ({"statusCode": "201", "body": "ok"}, 201, b"ok"),
        ({"headers": {"a": "b"}}, 200, b""),
        ({"statusCode": 200, "body": "dGVzdC1kYXRh", "isBase64Encoded": True}, 200, b"dGVzdC1kYXRh"),
    ],
)
async def test_proxy_response_validation(
    gateway: TestClient[Any, Any], result: Any, status: int, body: bytes
) -> None:
    resp = await raw(gateway, "POST", "/dev/shaped", data=json.dumps(result))
    assert resp.status == status
    assert await resp.read() == body
    if status == 502:
        assert resp.headers["x-amzn-ErrorType"] == "InternalServerErrorException"


async def test_base64_decoded_when_accept_matches(gateway: TestClient[Any, Any]) -> None:
    result = {"statusCode": 200, "body": "dGVzdC1kYXRh", "isBase64Encoded": True}
    resp = await raw(gateway, "POST", "/dev/shaped", data=json.dumps(result), headers={"Accept": "image/png"})
    assert await resp.read() == b"test-data"


async def test_multi_value_headers_merge(gateway: TestClient[Any, Any]) -> None:
    result = {
        "statusCode": 200,
        "multiValueHeaders": {"tesT-Multi": ["value-multi"]},
        "headers": {"test-multi": "value-solo", "header-bool": True},
    }
    resp = await raw(gateway, "POST", "/dev/shaped", data=json.dumps(result))
    # One line per value (aws-contract.md §2.4); a client that folds repeats reads what AWS's
    # recording shows, "value-multi, value-solo".
    assert resp.headers.getall("test-multi") == ["value-multi", "value-solo"]
    assert resp.headers["header-bool"] == "true"


async def test_handler_exception_is_502_and_gateway_survives(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "GET", "/dev/boom")
    assert resp.status == 502
    assert await resp.read() == b'{"message": "Internal server error"}'
    assert (await raw(gateway, "GET", "/dev/mock")).status == 201


async def test_handler_timeout_is_504(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "GET", "/dev/slow?s=2")
    assert resp.status == 504
    assert await resp.read() == b'{"message":"Endpoint request timed out"}'


async def test_worker_crash_is_502_then_recovers(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "GET", "/dev/crash")
    assert resp.status == 502
    again = await raw(gateway, "GET", "/dev/isolated")
    assert again.status == 200
    assert (await again.json())["env"] == "hi"  # the function's own environment, in its worker


async def test_http_proxy(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "POST", "/dev/proxy/a/b?k=v", data=b"payload")
    assert resp.status == 200
    assert await resp.json() == {"path": "/backend/a/b", "query": "k=v", "method": "POST", "body": "payload"}


async def test_http_proxy_slow_backend_is_504(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "GET", "/dev/proxy/x?delay=2")
    assert resp.status == 504
    assert await resp.read() == b'{"message":"Endpoint request timed out"}'


async def test_http_proxy_backend_down_is_502(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "GET", "/dev/down")
    assert resp.status == 502
    assert await resp.read() == b'{"message": "Internal server error"}'


async def test_body_over_limit_is_413_plain_text(gateway: TestClient[Any, Any]) -> None:
    resp = await raw(gateway, "POST", "/dev/anything", data=b"x" * 2048)
    assert resp.status == 413
    assert await resp.read() == b"HTTP content length exceeded 1024 bytes."
    ok = await raw(gateway, "POST", "/dev/anything", data=b"x" * 1024)
    assert ok.status == 200


async def test_http_api_default_stage_payload_v2(aiohttp_client: Client) -> None:
    http = ApiConfig(
        name="httpapi",
        id="httpapiid",
        kind=ApiKind.HTTP,
        stages=(StageConfig("$default"),),
        routes=(
            route("GET /items/{id}", python("v2_inferred", payload="2.0")),
            RouteConfig(method="ANY", path="$default", integration=python("v2_inferred", payload="2.0")),
        ),
    )
    gateway = await aiohttp_client(create_app(GatewayConfig(apis=(http,))))
    resp = await raw(gateway, "GET", "/items/42")
    assert resp.status == 200
    assert await resp.json() == {"routeKey": "GET /items/{id}", "rawPath": "/items/42"}
    assert "apigw-requestid" in resp.headers
    fallback = await raw(gateway, "DELETE", "/whatever/else")
    assert await fallback.json() == {"routeKey": "$default", "rawPath": "/whatever/else"}


async def test_http_api_no_route_is_404(aiohttp_client: Client) -> None:
    http = ApiConfig(
        name="h",
        id="hid",
        kind=ApiKind.HTTP,
        stages=(StageConfig("$default"),),
        routes=(route("GET /items", python("v2_inferred", payload="2.0")),),
    )
    gateway = await aiohttp_client(create_app(GatewayConfig(apis=(http,))))
    resp = await raw(gateway, "GET", "/nothing")
    assert resp.status == 404
    assert await resp.read() == b'{"message":"Not Found"}'
    assert "x-amzn-ErrorType" not in resp.headers

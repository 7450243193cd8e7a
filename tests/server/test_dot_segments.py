"""Dot-segments never reach an HTTP_PROXY backend (issue 11, item 7): a path with a ``.`` or
``..`` segment, in any spelling a backend might decode, gets the API's "no route" answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    RouteConfig,
    StageConfig,
)
from tests.server.live import body_of, live_gateway, send_raw, status_of


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.raw_path)
        return web.json_response({"ok": True})


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, int]]:
    record = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    assert server.port is not None
    yield record, server.port
    await server.close()


@pytest.fixture
async def port(recorder: tuple[Recorder, int]) -> AsyncIterator[int]:
    backend_port = recorder[1]

    def proxy(path: str, uri: str) -> RouteConfig:
        return RouteConfig(
            method="ANY",
            path=path,
            integration=IntegrationConfig(type=IntegrationType.HTTP_PROXY, uri=uri, timeout_ms=5000),
        )

    config = GatewayConfig(
        apis=(
            ApiConfig(
                name="rest",
                id="restid0001",
                kind=ApiKind.REST,
                stages=(StageConfig("dev"),),
                routes=(proxy("/v1/{proxy+}", f"http://127.0.0.1:{backend_port}/public/v1/{{proxy}}"),),
            ),
            ApiConfig(
                name="http",
                id="httpid0001",
                kind=ApiKind.HTTP,
                stages=(StageConfig("$default"),),
                routes=(proxy("/api/{proxy+}", f"http://127.0.0.1:{backend_port}/public/api/{{proxy}}"),),
            ),
        ),
        account_throttle=None,
    )
    async with live_gateway(config) as bound_port:
        yield bound_port


async def get(port: int, path: str) -> bytes:
    return await send_raw(port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())


ESCAPES = [
    "/v1/../../internal/admin",
    "/v1/%2e%2e/%2e%2e/internal/admin",
    "/v1/%2E%2e/%2E%2E/internal/admin",
    "/v1/.%2e/.%2E/internal/admin",
    "/v1/a/%2e%2e%2f%2e%2e%2f%2e%2e/internal",
    "/v1/a/..%5c..%5cinternal",
    "/v1/a/..\\..\\internal",
    "/v1/./x",
    "/v1/x/..",
]


@pytest.mark.parametrize("path", ESCAPES)
async def test_rest_dot_segments_are_refused_and_never_forwarded(
    port: int, recorder: tuple[Recorder, int], path: str
) -> None:
    data = await get(port, "/dev" + path)
    assert status_of(data) == 403
    assert json.loads(body_of(data)) == {"message": "Missing Authentication Token"}
    assert recorder[0].paths == []


@pytest.mark.parametrize("path", ["/api/../../internal/admin", "/api/%2e%2e/internal", "/api/.%2E/x"])
async def test_http_api_dot_segments_are_refused_404(
    port: int, recorder: tuple[Recorder, int], path: str
) -> None:
    data = await get(port, path)
    assert status_of(data) == 404
    assert json.loads(body_of(data)) == {"message": "Not Found"}
    assert recorder[0].paths == []


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [
        ("/dev/v1/file.txt", "/public/v1/file.txt"),
        ("/dev/v1/a..b/.well-known/c", "/public/v1/a..b/.well-known/c"),
        ("/dev/v1/...", "/public/v1/..."),
        ("/api/x/y.json", "/public/api/x/y.json"),
    ],
)
async def test_dots_inside_segments_are_forwarded(
    port: int, recorder: tuple[Recorder, int], path: str, forwarded: str
) -> None:
    data = await get(port, path)
    assert status_of(data) == 200
    assert recorder[0].paths == [forwarded]

"""WebSocket routes with an HTTP backend: the message body is POSTed through the lean keep-alive
client REST routes use; the backend's body is the route response; a backend that is down or too
slow gives AWS's ``Internal server error`` frame and the connection stays open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.config.model import (
    ApiConfig,
    ApiKind,
    IntegrationConfig,
    IntegrationType,
    RouteConfig,
    StageConfig,
)
from tests.connections.conftest import GatewayFactory, ws_url
from tests.redis_fixture import free_port


class Backend:
    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], str]] = []
        self.release = asyncio.Event()

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.seen.append((dict(request.headers), body))
        return web.json_response({"got": json.loads(body)})

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.json_response({})


@pytest.fixture
async def backend() -> AsyncIterator[tuple[Backend, int]]:
    state = Backend()
    app = web.Application()
    app.router.add_post("/echo", state.echo)
    app.router.add_post("/slow", state.slow)
    server = TestServer(app, port=0)
    await server.start_server()
    assert server.port is not None
    yield state, server.port
    state.release.set()
    await server.close()


def http_route(key: str, uri: str, timeout_ms: int = 2000) -> RouteConfig:
    integration = IntegrationConfig(type=IntegrationType.HTTP_PROXY, uri=uri, timeout_ms=timeout_ms)
    return RouteConfig(method="", path=key, integration=integration, route_response=True)


async def test_http_route_posts_the_body_and_answers_with_the_backend_body(
    ws_gateway: GatewayFactory, backend: tuple[Backend, int]
) -> None:
    state, port = backend
    dead = free_port()
    api = ApiConfig(
        name="h",
        id="httpwsapi",
        kind=ApiKind.WEBSOCKET,
        stages=(StageConfig("dev"),),
        routes=(
            http_route("echo", f"http://127.0.0.1:{port}/echo"),
            http_route("slow", f"http://127.0.0.1:{port}/slow", timeout_ms=200),
            http_route("down", f"http://127.0.0.1:{dead}/x"),
        ),
    )
    server = await ws_gateway(api)
    async with websockets.connect(ws_url(server)) as ws:
        message = {"action": "echo", "n": 1}
        await ws.send(json.dumps(message))
        async with asyncio.timeout(5):
            assert json.loads(await ws.recv()) == {"got": message}
        headers, _ = state.seen[0]
        assert headers["routeKey"] == "echo" and headers["connectionId"]
        assert headers["X-Amzn-Apigateway-Api-Id"] == "httpwsapi"
        for action in ("slow", "down"):
            await ws.send(json.dumps({"action": action}))
            async with asyncio.timeout(5):
                frame = json.loads(await ws.recv())
            assert frame["message"] == "Internal server error", action
        # Still open: the next message goes through.
        await ws.send(json.dumps({"action": "echo", "n": 2}))
        async with asyncio.timeout(5):
            assert json.loads(await ws.recv()) == {"got": {"action": "echo", "n": 2}}

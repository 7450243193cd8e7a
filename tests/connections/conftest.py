"""A WebSocket gateway on port 0 for the connection tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    Isolation,
    RouteConfig,
    StageConfig,
    WebSocketSettings,
    frozen_map,
)
from tests.connections.handlers import ws_handlers

ROOT = Path(__file__).resolve().parents[2]  # handlers import as tests.connections.handlers.*


def python(handler: str) -> IntegrationConfig:
    return IntegrationConfig(
        type=IntegrationType.PYTHON,
        handler=f"tests.connections.handlers.ws_handlers.{handler}",
        code_dir=ROOT,
        function_name=handler,
        isolation=Isolation.INPROCESS,
        timeout_ms=5000,
    )


def ws_route(key: str, handler: str, *, response: bool = True) -> RouteConfig:
    return RouteConfig(method="", path=key, integration=python(handler), route_response=response)


def chat_api(settings: WebSocketSettings | None = None, *, with_default: bool = True) -> ApiConfig:
    routes = [
        ws_route("$connect", "connect", response=False),
        ws_route("$disconnect", "disconnect", response=False),
        ws_route("echo", "echo"),
        ws_route("fail", "fail"),
        ws_route("silent", "silent", response=False),
        ws_route("whoami", "whoami"),
    ]
    if with_default:
        routes.append(ws_route("$default", "default"))
    return ApiConfig(
        name="chat",
        id="chatapi",
        kind=ApiKind.WEBSOCKET,
        stages=(StageConfig("dev", frozen_map({"room": "lobby"})),),
        routes=tuple(routes),
        websocket=settings or WebSocketSettings(),
    )


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def ws_gateway() -> AsyncIterator[GatewayFactory]:
    """Start gateways on port 0: `await ws_gateway(api, ...)` -> TestServer."""
    ws_handlers.EVENTS.clear()
    ws_handlers.DISCONNECTED = None
    servers: list[TestServer] = []

    async def start(*apis: ApiConfig, redis_url: str | None = None, **settings: Any) -> TestServer:
        # settings: other GatewayConfig fields (iam_credentials, management, ...)
        server = TestServer(create_app(GatewayConfig(apis=apis, **settings), redis_url=redis_url), port=0)
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


def ws_url(server: TestServer, path: str = "/dev") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


__all__ = ["chat_api", "replace", "ws_route", "ws_url"]

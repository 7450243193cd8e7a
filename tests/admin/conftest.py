"""Fixtures of the admin API tests: a backend counting hits, a gateway with one keyed REST API,
the admin credentials in the environment, boto3's ``apigateway`` client pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import boto3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botocore.config import Config

from server.app import create_app
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    PlanStage,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
    UsagePlanConfig,
)

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
ACCESS_KEY = "AKIAPORTWAYADMIN0001"
SECRET_KEY = "portway-admin-secret-key-for-tests-only"
TOKEN = "admin-token-0123456789"


class Backend:
    def __init__(self) -> None:
        self.hits = 0
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response({"ok": True})

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    counter = Backend()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", counter.handle)
    server = TestServer(app, port=0)
    await server.start_server()
    counter.server = server
    yield counter
    await server.close()


@pytest.fixture(params=["embedded", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "embedded":
        return None
    url: str = request.getfixturevalue("clean_redis_url")
    return url


def gateway_config(backend: Backend, *, plans: tuple[UsagePlanConfig, ...] = ()) -> GatewayConfig:
    def proxied(key: str, *, keyed: bool = True) -> RouteConfig:
        method, _, path = key.partition(" ")
        integration = IntegrationConfig(
            type=IntegrationType.HTTP_PROXY, uri=f"http://127.0.0.1:{backend.port}{path}", timeout_ms=2000
        )
        return RouteConfig(method=method, path=path, integration=integration, api_key_required=keyed)

    api = ApiConfig(
        name="pets",
        id="petsid",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"), StageConfig("prod")),
        routes=(proxied("GET /pets"), proxied("GET /"), proxied("GET /open", keyed=False)),
    )
    return GatewayConfig(apis=(api,), usage_plans=plans)


DECLARED_PLAN = UsagePlanConfig(
    id="declared", name="Declared", stages=(PlanStage("petsid", "prod"),), throttle=ThrottleSettings(100, 50)
)


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTWAY_ADMIN_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("PORTWAY_ADMIN_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("PORTWAY_ADMIN_TOKEN", TOKEN)


@pytest.fixture
async def gateway(
    aiohttp_client: Client, backend: Backend, store_url: str | None, admin_env: None
) -> TestClient[Any, Any]:
    return await aiohttp_client(
        create_app(gateway_config(backend, plans=(DECLARED_PLAN,)), redis_url=store_url)
    )


class Boto:
    """boto3's (synchronous) ``apigateway`` client, called in a thread."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.client, name)

        async def call(**kwargs: Any) -> Any:
            return await asyncio.to_thread(method, **kwargs)

        return call


def boto_client(
    gateway: TestClient[Any, Any], *, secret: str = SECRET_KEY, region: str = "us-east-1"
) -> Boto:
    client = boto3.session.Session().client(
        "apigateway",
        endpoint_url=f"http://127.0.0.1:{gateway.server.port}/@admin",
        region_name=region,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    return Boto(client)


@pytest.fixture
def boto(gateway: TestClient[Any, Any]) -> Boto:
    return boto_client(gateway)

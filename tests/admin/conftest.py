"""Fixtures of the admin API tests: a backend counting hits, a gateway with one keyed REST API,
the admin credentials in the environment, boto3's ``apigateway`` client pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import boto3
import pytest
from aiohttp.test_utils import TestClient
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
from tests.backends import Backend

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
ACCESS_KEY = "AKIAPORTWAYADMIN0001"
SECRET_KEY = "portway-admin-secret-key-for-tests-only"
TOKEN = "admin-token-0123456789"


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

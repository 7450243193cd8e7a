"""``GET /@metrics``: Prometheus exposition of the throttling counters and node gauges."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    ManagementSettings,
    MockResponse,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
)

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


def config() -> GatewayConfig:
    mock = IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(status=200, body="ok"))
    stage = StageConfig("dev", method_throttles=MappingProxyType({"GET /one": ThrottleSettings(0.001, 1)}))
    api = ApiConfig(
        name="m",
        id="metricsapi",
        kind=ApiKind.REST,
        stages=(stage,),
        routes=(RouteConfig("GET", "/one", mock),),
    )
    return GatewayConfig(apis=(api,))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_count_throttling_decisions(aiohttp_client: Client) -> None:
    client = await aiohttp_client(create_app(config()))
    for _ in range(3):
        async with client.get("/dev/one") as response:
            await response.read()
    async with client.get("/@metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        found = samples(await response.text())
    assert found[("portway_throttle_decisions_total", ())] == 3
    assert found[("portway_throttle_refused_total", (("cause", "throttle"),))] == 2
    assert found[("portway_throttle_refused_total", (("cause", "quota"),))] == 0
    assert found[("portway_throttle_store_errors_total", ())] == 0
    assert found[("portway_throttle_store_failing", ())] == 0
    assert found[("portway_websocket_connections", ())] == 0
    assert found[("portway_websocket_flood_closes_total", ())] == 0


async def test_metrics_only_for_management_networks(aiohttp_client: Client) -> None:
    networks = ManagementSettings(auth="none", allow_networks=("10.99.0.0/16",))
    client = await aiohttp_client(create_app(replace(config(), management=networks)))
    async with client.get("/@metrics") as response:
        assert response.status == 403

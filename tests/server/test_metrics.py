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
    Isolation,
    ManagementSettings,
    MockResponse,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
)
from tests.server.test_gateway_rest import python, rest_api, route
from tests.store.conftest import eventually

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


def histogram(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, labels: dict[str, str]
) -> tuple[dict[str, float], float]:
    """The cumulative buckets (le -> count) and the count of one histogram series."""
    buckets = {}
    for (sample, sample_labels), value in found.items():
        named = dict(sample_labels)
        if sample == f"{name}_bucket" and {k: named.get(k) for k in labels} == labels:
            buckets[named["le"]] = value
    return buckets, found[(f"{name}_count", tuple(sorted(labels.items())))]


async def test_metrics_requests_by_route_and_status_with_latency(aiohttp_client: Client) -> None:
    client = await aiohttp_client(create_app(config()))
    for _ in range(3):
        async with client.get("/dev/one") as response:
            await response.read()
    async with client.get("/dev/nowhere") as response:
        assert response.status == 403  # no route: REST's Missing Authentication Token
    async with client.get("/@metrics") as response:
        found = samples(await response.text())
    one = {"api": "m", "stage": "dev", "route": "GET /one"}
    assert found[("portway_requests_total", tuple(sorted({**one, "status": "200"}.items())))] == 1
    assert found[("portway_requests_total", tuple(sorted({**one, "status": "429"}.items())))] == 2
    unmatched = {"api": "-", "stage": "-", "route": "-", "status": "403"}
    assert found[("portway_requests_total", tuple(sorted(unmatched.items())))] == 1
    buckets, count = histogram(found, "portway_request_duration_seconds", one)
    assert count == 3 and buckets["+Inf"] == 3
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    # Only the admitted request reached the integration.
    _, count = histogram(found, "portway_integration_duration_seconds", one)
    assert count == 1
    # Each of the three throttling decisions was timed in the store.
    assert found[("portway_store_admit_duration_seconds_count", ())] == 3


async def test_metrics_handler_worker_pools(aiohttp_client: Client) -> None:
    slow = python("slow", isolation=Isolation.PROCESS, timeout_ms=300)
    api = rest_api("pools", [route("GET /slow", slow)])
    client = await aiohttp_client(create_app(GatewayConfig(apis=(api,))))
    # Warm first: a call that times out during a cold start leaves the starting worker alive.
    async with client.get("/dev/slow?s=0") as response:
        assert response.status == 200
    async with client.get("/dev/slow?s=5") as response:
        assert response.status == 504
    fn = (("function", "slow"),)

    async def killed() -> bool:  # the pool counts the kill once the worker's death is read
        async with client.get("/@metrics") as response:
            return samples(await response.text())[("portway_handler_pool_killed_total", fn)] == 1

    await eventually(killed)
    async with client.get("/@metrics") as response:
        found = samples(await response.text())
    assert found[("portway_handler_pool_timeouts_total", fn)] == 1
    assert found[("portway_handler_pool_killed_total", fn)] == 1  # a timed-out worker is killed
    assert found[("portway_handler_pool_spawned_total", fn)] >= 1
    assert found[("portway_handler_pool_waiting", fn)] == 0
    assert found[("portway_handler_pool_queue_full_total", fn)] == 0


async def test_request_metrics_can_be_switched_off(aiohttp_client: Client) -> None:
    client = await aiohttp_client(create_app(config(), request_metrics=False))
    async with client.get("/dev/one") as response:
        await response.read()
    async with client.get("/@metrics") as response:
        found = samples(await response.text())
    assert not any(name == "portway_requests_total" for name, _ in found)
    assert found[("portway_throttle_decisions_total", ())] == 1

"""End to end: stage, method and account throttling (aws-contract.md §3.1) on a real gateway, on the
embedded store and on Redis; fail open / fail closed when the store is unreachable."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import GATEWAY, create_app
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
)
from server.stages.throttle import ThrottleStage
from server.throttle.admission import Admission
from tests.backends import Backend
from tests.redis_fixture import free_port

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

TINY = 0.001  # tokens per second: nothing refills during a test
BODY = {"message": "Too Many Requests"}


def limit(rate: float, burst: int) -> ThrottleSettings:
    return ThrottleSettings(rate, burst)


def make_config(
    backend: Backend,
    stages: tuple[StageConfig, ...],
    *,
    account: ThrottleSettings | None = None,
    failure: str = "open",
) -> GatewayConfig:
    assert backend.server is not None and backend.server.port is not None
    port = backend.server.port

    def proxied(key: str) -> RouteConfig:
        method, _, path = key.partition(" ")
        integration = IntegrationConfig(
            type=IntegrationType.HTTP_PROXY, uri=f"http://127.0.0.1:{port}{path}", timeout_ms=2000
        )
        return RouteConfig(method=method, path=path, integration=integration)

    api = ApiConfig(
        name="pets",
        id="petsid",
        kind=ApiKind.REST,
        stages=stages,
        routes=(proxied("GET /limited"), proxied("GET /other")),
    )
    extra: dict[str, Any] = {"throttle_failure": failure}
    if account is not None:
        extra["account_throttle"] = account
    return GatewayConfig(apis=(api,), **extra)


def stage(name: str, default: ThrottleSettings | None = None, **methods: ThrottleSettings) -> StageConfig:
    keyed = {f"GET /{path}": settings for path, settings in methods.items()}
    return StageConfig(name, throttle=default, method_throttles=MappingProxyType(keyed))


async def start(aiohttp_client: Client, config: GatewayConfig, url: str | None) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(config, redis_url=url))


def throttle_stage(client: TestClient[Any, Any]) -> Admission:
    stages = client.server.app[GATEWAY]._stages
    (found,) = [s for s in stages if isinstance(s, ThrottleStage)]
    return found.admission


async def statuses(client: TestClient[Any, Any], path: str, count: int) -> list[int]:
    found = []
    for _ in range(count):
        async with client.get(path) as response:
            await response.read()
            found.append(response.status)
    return found


async def test_method_throttle_admits_burst_then_429(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    config = make_config(backend, (stage("dev", limited=limit(TINY, 5)),))
    client = await start(aiohttp_client, config, store_url)
    codes = await statuses(client, "/dev/limited", 20)
    assert codes == [200] * 5 + [429] * 15
    async with client.get("/dev/limited") as response:
        assert response.status == 429
        assert await response.text() == json.dumps(BODY, separators=(",", ":"))
        assert response.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
        retry = int(response.headers["Retry-After"])
        assert retry >= 1
    assert backend.hits == {"/limited": 5}
    # Another route of the same stage has no method throttle: only the account applies.
    assert await statuses(client, "/dev/other", 10) == [200] * 10
    counters = throttle_stage(client)
    assert (counters.checked, counters.limited, counters.store_errors) == (31, 16, 0)


async def test_stage_default_applies_to_routes_without_method_throttle(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    stages = (stage("dev", limit(TINY, 3)), stage("prod"))
    client = await start(aiohttp_client, make_config(backend, stages), store_url)
    assert await statuses(client, "/dev/other", 6) == [200] * 3 + [429] * 3
    # The stage default is per route (AWS's */* method setting): another route has its own bucket.
    assert await statuses(client, "/dev/limited", 4) == [200] * 3 + [429]
    # Another stage has its own (here: no) stage bucket.
    assert await statuses(client, "/prod/other", 5) == [200] * 5
    assert backend.hits == {"/other": 8, "/limited": 3}


async def test_account_bucket_applies_across_stages(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    config = make_config(backend, (stage("dev"), stage("prod")), account=limit(TINY, 4))
    client = await start(aiohttp_client, config, store_url)
    assert await statuses(client, "/dev/other", 2) == [200, 200]
    assert await statuses(client, "/prod/limited", 2) == [200, 200]
    assert await statuses(client, "/prod/other", 1) == [429]
    assert await statuses(client, "/dev/limited", 1) == [429]
    assert sum(backend.hits.values()) == 4


async def test_refusal_downstream_consumes_nothing_upstream(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    # /limited: method 2 (replaces the stage default), /other: stage default 3; account 7. Refusals
    # by the method or stage bucket must not drain the account.
    config = make_config(
        backend, (stage("dev", limit(TINY, 3), limited=limit(TINY, 2)), stage("prod")), account=limit(TINY, 7)
    )
    client = await start(aiohttp_client, config, store_url)
    assert await statuses(client, "/dev/limited", 10) == [200] * 2 + [429] * 8
    assert await statuses(client, "/dev/other", 5) == [200] * 3 + [429] * 2
    # The account holds 7 - 2 - 3 = 2 tokens, for another stage.
    assert await statuses(client, "/prod/other", 3) == [200, 200, 429]
    assert backend.hits == {"/limited": 2, "/other": 5}
    counters = throttle_stage(client)
    assert (counters.checked, counters.limited) == (18, 11)


@pytest.mark.parametrize(("failure", "expected"), [("open", 200), ("closed", 429)])
async def test_unreachable_store(
    aiohttp_client: Client, backend: Backend, failure: str, expected: int
) -> None:
    config = make_config(backend, (stage("dev", limited=limit(TINY, 1)),), failure=failure)
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    client = await start(aiohttp_client, config, url)
    codes = await statuses(client, "/dev/limited", 3)
    assert codes == [expected] * 3
    if expected == 429:
        async with client.get("/dev/limited") as response:
            assert await response.json() == BODY
            assert response.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    counters = throttle_stage(client)
    assert counters.store_errors >= 3
    assert sum(backend.hits.values()) == (3 if failure == "open" else 0)


async def test_account_throttle_off_skips_the_store_for_unthrottled_routes(
    aiohttp_client: Client, backend: Backend
) -> None:
    base = make_config(backend, (stage("dev", limited=limit(TINY, 1)),))
    config = GatewayConfig(apis=base.apis, account_throttle=None)
    client = await start(aiohttp_client, config, None)
    assert await statuses(client, "/dev/other", 20) == [200] * 20
    assert await statuses(client, "/dev/limited", 2) == [200, 429]
    counters = throttle_stage(client)
    assert (counters.checked, counters.limited) == (2, 1)


async def test_the_api_setting_overrides_the_gateway_failure_policy(
    aiohttp_client: Client, backend: Backend
) -> None:
    base = make_config(backend, (stage("dev", limited=limit(TINY, 1)),), failure="open")
    config = dataclasses.replace(base, apis=(dataclasses.replace(base.apis[0], throttle_failure="closed"),))
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    client = await start(aiohttp_client, config, url)
    assert await statuses(client, "/dev/limited", 2) == [429, 429]
    assert throttle_stage(client).store_errors >= 2

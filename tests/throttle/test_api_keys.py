"""End to end: API keys and usage plans (aws-contract.md §3.2, §3.3) on a real gateway, on the embedded
store and on Redis: 403 Forbidden for missing/unknown/disabled/unplanned keys, plan throttles
(basic vs premium), per-route plan throttles, quotas (429 Limit Exceeded), runtime changes
without a restart, X-RateLimit headers."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import KEYS, THROTTLE, create_app
from server.config.model import (
    ApiConfig,
    ApiKeyConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    PlanStage,
    QuotaSettings,
    RouteConfig,
    StageConfig,
    ThrottleSettings,
    UsagePlanConfig,
)
from server.keys.registry import KeyRegistry, config_key_id
from tests.backends import Backend
from tests.server.test_gateway_rest import python as python_integration
from tests.store.conftest import eventually

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

TINY = 0.001  # tokens per second: nothing refills during a test
BASIC = "basicKey0123456789abcdef"
PREMIUM = "premiumKey0123456789abcdef"
FREE = "freeKey0123456789abcdefgh"
FORBIDDEN = {"message": "Forbidden"}


def make_config(backend: Backend, **extra: Any) -> GatewayConfig:
    assert backend.server is not None and backend.server.port is not None
    port = backend.server.port

    def proxied(key: str, *, keyed: bool = True) -> RouteConfig:
        method, _, path = key.partition(" ")
        integration = IntegrationConfig(
            type=IntegrationType.HTTP_PROXY, uri=f"http://127.0.0.1:{port}{path}", timeout_ms=2000
        )
        return RouteConfig(method=method, path=path, integration=integration, api_key_required=keyed)

    api = ApiConfig(
        name="pets",
        id="petsid",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"), StageConfig("prod")),
        routes=(proxied("GET /pets"), proxied("GET /slow"), proxied("GET /open", keyed=False)),
    )
    plans = (
        UsagePlanConfig(
            id="basic",
            name="Basic",
            stages=(
                PlanStage("petsid", "dev", MappingProxyType({"GET /slow": ThrottleSettings(TINY, 1)})),
                PlanStage("petsid", "prod"),
            ),
            throttle=ThrottleSettings(TINY, 3),
        ),
        UsagePlanConfig(
            id="premium",
            name="Premium",
            stages=(PlanStage("petsid", "dev"),),
            throttle=ThrottleSettings(TINY, 6),
        ),
        UsagePlanConfig(
            id="free",
            name="Free",
            stages=(PlanStage("petsid", "dev"),),
            quota=QuotaSettings(4, "DAY"),
        ),
    )
    keys = (
        ApiKeyConfig("basic-client", BASIC, plans=("basic",)),
        ApiKeyConfig("premium-client", PREMIUM, plans=("premium",)),
        ApiKeyConfig("free-client", FREE, plans=("free",)),
        ApiKeyConfig("no-plan", "noPlanKey0123456789abcdef"),
        ApiKeyConfig("off", "disabledKey0123456789abcdef", enabled=False, plans=("premium",)),
    )
    return GatewayConfig(apis=(api,), usage_plans=plans, api_keys=keys, **extra)


async def start(aiohttp_client: Client, config: GatewayConfig, url: str | None) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(config, redis_url=url))


async def statuses(client: TestClient[Any, Any], path: str, count: int, key: str | None) -> list[int]:
    found = []
    headers = {"x-api-key": key} if key is not None else {}
    for _ in range(count):
        async with client.get(path, headers=headers) as response:
            await response.read()
            found.append(response.status)
    return found


def registry(client: TestClient[Any, Any]) -> KeyRegistry:
    return client.server.app[KEYS]


async def test_missing_unknown_disabled_or_unplanned_key_is_forbidden(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    client = await start(aiohttp_client, make_config(backend), store_url)
    for key in (
        None,
        "",
        "wrongKey0123456789abcdefgh",
        "disabledKey0123456789abcdef",
        "noPlanKey0123456789abcdef",
    ):
        headers = {} if key is None else {"x-api-key": key}
        async with client.get("/dev/pets", headers=headers) as response:
            assert response.status == 403, key
            assert await response.text() == json.dumps(FORBIDDEN, separators=(",", ":"))
            assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    # premium covers dev only: the key is valid but not for prod.
    assert await statuses(client, "/prod/pets", 1, PREMIUM) == [403]
    assert backend.hits == {}
    # The header name is case-insensitive; keys are ignored on routes without apiKeyRequired.
    async with client.get("/dev/pets", headers={"X-API-Key": PREMIUM}) as response:
        assert response.status == 200
    assert await statuses(client, "/dev/open", 2, "wrongKey0123456789abcdefgh") == [200, 200]


async def test_premium_and_basic_keys_get_their_own_plan_limits(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    client = await start(aiohttp_client, make_config(backend), store_url)
    assert await statuses(client, "/dev/pets", 5, BASIC) == [200] * 3 + [429] * 2
    assert await statuses(client, "/dev/pets", 8, PREMIUM) == [200] * 6 + [429] * 2
    # The basic plan's bucket is per key and shared by every stage of the plan.
    assert await statuses(client, "/prod/pets", 1, BASIC) == [429]
    async with client.get("/dev/pets", headers={"x-api-key": BASIC}) as response:
        assert response.status == 429
        assert await response.json() == {"message": "Too Many Requests"}
        assert response.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
        assert int(response.headers["Retry-After"]) >= 1
    assert backend.hits == {"/pets": 9}


async def test_plan_route_throttle_replaces_the_plan_throttle(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    client = await start(aiohttp_client, make_config(backend), store_url)
    assert await statuses(client, "/dev/slow", 3, BASIC) == [200, 429, 429]
    # The plan-level bucket (3) was not used by /slow.
    assert await statuses(client, "/dev/pets", 4, BASIC) == [200] * 3 + [429]


async def test_quota_gives_limit_exceeded_without_retry_after(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    client = await start(aiohttp_client, make_config(backend), store_url)
    assert await statuses(client, "/dev/pets", 4, FREE) == [200] * 4
    async with client.get("/dev/pets", headers={"x-api-key": FREE}) as response:
        assert response.status == 429
        assert await response.text() == '{"message":"Limit Exceeded"}'
        assert response.headers["x-amzn-ErrorType"] == "LimitExceededException"
        assert "Retry-After" not in response.headers
    assert backend.hits == {"/pets": 4}
    admission = client.server.app[THROTTLE].admission
    assert (admission.limited, admission.quota_limited) == (1, 1)


async def test_runtime_changes_apply_without_restart(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    client = await start(aiohttp_client, make_config(backend), store_url)
    keys = registry(client)
    premium_id = config_key_id("premium-client")
    assert await statuses(client, "/dev/pets", 1, PREMIUM) == [200]
    await keys.update_key(premium_id, enabled=False)
    assert await statuses(client, "/dev/pets", 1, PREMIUM) == [403]
    await keys.update_key(premium_id, enabled=True)
    _, new_value = await keys.rotate_key(premium_id)
    assert await statuses(client, "/dev/pets", 1, PREMIUM) == [403]
    assert await statuses(client, "/dev/pets", 1, new_value) == [200]
    created, value = await keys.create_key("carol", plans=["premium"])
    assert await statuses(client, "/dev/pets", 1, value) == [200]
    await keys.set_key_plans(created.id, [])
    assert await statuses(client, "/dev/pets", 1, value) == [403]
    await keys.delete_key(premium_id)
    assert await statuses(client, "/dev/pets", 1, new_value) == [403]


async def test_changes_reach_another_node_on_redis(
    aiohttp_client: Client, backend: Backend, clean_redis_url: str
) -> None:
    config = make_config(backend)
    first = await start(aiohttp_client, config, clean_redis_url)
    second = await start(aiohttp_client, config, clean_redis_url)
    created, value = await registry(first).create_key("dave", plans=["premium"])

    async def answers(status: int) -> bool:
        return await statuses(second, "/dev/pets", 1, value) == [status]

    await eventually(lambda: answers(200), within=10)
    await registry(first).update_key(created.id, enabled=False)
    await eventually(lambda: answers(403), within=10)


async def test_rate_limit_headers_when_enabled(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    client = await start(aiohttp_client, make_config(backend, rate_limit_headers=True), store_url)
    seen = []
    for _ in range(4):
        async with client.get("/dev/pets", headers={"x-api-key": BASIC}) as response:
            seen.append(
                (
                    response.status,
                    response.headers["X-RateLimit-Limit"],
                    response.headers["X-RateLimit-Remaining"],
                )
            )
            assert int(response.headers["X-RateLimit-Reset"]) >= 1
    assert seen == [(200, "3", "2"), (200, "3", "1"), (200, "3", "0"), (429, "3", "0")]
    async with client.get("/dev/pets", headers={"x-api-key": FREE}) as response:
        assert response.headers["X-RateLimit-Limit"] == "4"
        assert response.headers["X-RateLimit-Remaining"] == "3"
        assert 0 < int(response.headers["X-RateLimit-Reset"]) <= 86400


async def test_rate_limit_headers_off_by_default(
    aiohttp_client: Client, backend: Backend, store_url: str | None
) -> None:
    client = await start(aiohttp_client, make_config(backend), store_url)
    async with client.get("/dev/pets", headers={"x-api-key": BASIC}) as response:
        assert response.status == 200
        assert "X-RateLimit-Limit" not in response.headers


async def test_declared_key_without_value_is_generated_and_logged_once(
    aiohttp_client: Client, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    base = make_config(backend)
    config = GatewayConfig(
        apis=base.apis,
        usage_plans=base.usage_plans,
        api_keys=(ApiKeyConfig("generated", None, plans=("premium",)),),
    )
    with caplog.at_level(logging.WARNING, logger="portway.keys"):
        client = await start(aiohttp_client, config, None)
    (line,) = [r.getMessage() for r in caplog.records if "created with value" in r.getMessage()]
    value = line.split("created with value ")[1].split()[0]
    assert len(value) == 40 and value.isalnum()
    assert await statuses(client, "/dev/pets", 1, value) == [200]
    stored = registry(client).key(config_key_id("generated"))
    assert stored is not None and value not in repr(stored) and stored.hint == value[:4]


async def test_the_event_identity_names_the_key_on_every_request(
    aiohttp_client: Client, backend: Backend
) -> None:
    """``identity.apiKey`` / ``apiKeyId`` in the Lambda event (AWS sets them once a key is used),
    for the first request of a key and for the later ones the stage serves from its cache."""
    base = make_config(backend)
    echo = dataclasses.replace(
        base.apis[0].routes[0],
        path="/echo",
        integration=python_integration("echo"),
    )
    api = dataclasses.replace(base.apis[0], routes=(*base.apis[0].routes, echo))
    client = await start(aiohttp_client, dataclasses.replace(base, apis=(api,)), None)
    for _ in range(2):
        async with client.get("/dev/echo", headers={"x-api-key": PREMIUM}) as response:
            assert response.status == 200
            identity = (await response.json())["event"]["requestContext"]["identity"]
        assert (identity["apiKey"], identity["apiKeyId"]) == (PREMIUM, config_key_id("premium-client"))

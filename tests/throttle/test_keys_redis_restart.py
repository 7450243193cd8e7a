"""Issue 11 item 1: a Redis restart without persistence does not wipe API keys.

Two gateways share one real redis-server; it is restarted empty. Keys declared in the
configuration and keys created at runtime keep working on both nodes throughout (each node serves
from its copy), and the nodes write them back, so the store (admin listings, a node started
afterwards) has them again.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from aiohttp.test_utils import TestClient

from server.config.model import ApiKeyConfig, GatewayConfig, PlanStage, UsagePlanConfig
from server.keys.registry import config_key_id
from tests.backends import Backend
from tests.redis_fixture import RedisServer
from tests.store.conftest import eventually
from tests.throttle.test_api_keys import Client, make_config, registry, start, statuses

DECLARED = "declaredKey0123456789abcdef"


def open_config(backend: Backend) -> GatewayConfig:
    """make_config's API with a plan that neither throttles nor counts a quota, so only the
    key decides the answer."""
    base = make_config(backend)
    plan = UsagePlanConfig("open", "Open", (PlanStage("petsid", "dev", MappingProxyType({})),))
    return GatewayConfig(
        apis=base.apis,
        usage_plans=(plan,),
        api_keys=(ApiKeyConfig("declared", DECLARED, plans=("open",)),),
    )


async def test_keys_survive_a_redis_restart_without_persistence(
    aiohttp_client: Client, backend: Backend, redis_server: RedisServer
) -> None:
    config = open_config(backend)
    nodes = [await start(aiohttp_client, config, redis_server.url) for _ in range(2)]
    created, runtime = await registry(nodes[0]).create_key("runtime", plans=["open"])

    async def everywhere(value: str, status: int) -> bool:
        for node in nodes:
            if await statuses(node, "/dev/pets", 1, value) != [status]:
                return False
        return True

    await eventually(lambda: everywhere(runtime, 200), within=10)

    redis_server.restart()  # same port, no persistence: every record is gone

    async def restored() -> bool:
        # Every answer meanwhile is 200: a node never adopts the empty registry.
        seen: list[int] = []
        for node in nodes:
            for value in (DECLARED, runtime):
                seen += await statuses(node, "/dev/pets", 1, value)
        assert set(seen) == {200}, seen
        listed = {key.id for key in await registry(nodes[1]).list_keys()}
        return {created.id, config_key_id("declared")} <= listed and all(
            registry(node).restores >= 1 for node in nodes
        )

    await eventually(restored, within=15)
    assert await everywhere(DECLARED, 200) and await everywhere(runtime, 200)
    assert [plan.id for plan in await registry(nodes[0]).list_plans()] == ["open"]
    # A node started now knows only the store: the keys are back in it, values unchanged.
    late: TestClient[Any, Any] = await start(aiohttp_client, config, redis_server.url)
    assert await statuses(late, "/dev/pets", 1, runtime) == [200]
    assert await statuses(late, "/dev/pets", 1, DECLARED) == [200]
    assert await statuses(late, "/dev/pets", 1, "unknownKey0123456789abcdef") == [403]

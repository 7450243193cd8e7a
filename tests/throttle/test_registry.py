"""The key registry on both stores: values stored only as digests, uniqueness, one plan per API
stage, the node's copy kept current without full reloads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.config.model import ApiKeyConfig, PlanStage, UsagePlanConfig
from server.keys.records import digest, key_key
from server.keys.registry import VERSION_KEY, Conflict, KeyRegistry, NotFoundError
from server.store.base import Store
from server.store.factory import open_store
from tests.store.conftest import eventually

VALUE = "registryKey0123456789abc"


@pytest.fixture
async def store(store_url: str | None) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.start()
    yield opened
    await opened.close()


@pytest.fixture
async def registry(store: Store) -> AsyncIterator[KeyRegistry]:
    plans = (
        UsagePlanConfig("basic", "Basic", (PlanStage("api1", "dev"),)),
        UsagePlanConfig("other", "Other", (PlanStage("api1", "dev"),)),
        UsagePlanConfig("prod", "Prod", (PlanStage("api1", "prod"),)),
    )
    found = KeyRegistry(store, known_stages=[("api1", "dev"), ("api1", "prod")])
    await found.start(plans, (ApiKeyConfig("declared", VALUE, plans=("basic",)),))
    yield found
    await found.close()


async def test_values_are_stored_only_as_digests(registry: KeyRegistry, store: Store) -> None:
    key, value = await registry.create_key("alice", plans=["basic"])
    fields = await store.hgetall(key_key(key.id))
    assert value.encode() not in b"".join(fields.values())
    assert fields["digest"] == digest(value).encode()
    assert registry.find(value) == key
    assert registry.find(value + "x") is None


async def test_values_are_unique(registry: KeyRegistry) -> None:
    with pytest.raises(Conflict):
        await registry.create_key("copy", value=VALUE)
    first, _ = await registry.create_key("a")
    second, value = await registry.create_key("b")
    with pytest.raises(Conflict):
        await registry.rotate_key(first.id, value)
    assert registry.find(value) == second


async def test_one_plan_per_api_stage(registry: KeyRegistry) -> None:
    key, _ = await registry.create_key("bob", plans=["basic", "prod"])
    with pytest.raises(Conflict):
        await registry.set_key_plans(key.id, ["basic", "other"])
    with pytest.raises(NotFoundError):
        await registry.set_key_plans(key.id, ["nope"])
    assert (await registry.get_key(key.id)).plans == ("basic", "prod")


async def test_plans_must_name_known_stages(registry: KeyRegistry) -> None:
    with pytest.raises(ValueError, match="no API stage"):
        await registry.put_plan(UsagePlanConfig("x", "X", (PlanStage("api1", "staging"),)))


async def test_own_changes_leave_the_copy_current(registry: KeyRegistry, store: Store) -> None:
    key, _ = await registry.create_key("carol")
    await registry.update_key(key.id, enabled=False)
    await registry.delete_key(key.id)
    # The version each change announced was applied in order: the poll has nothing to reload.
    assert registry._seen_version == await store.get(VERSION_KEY)


async def test_a_second_registry_on_the_same_store_sees_changes(registry: KeyRegistry, store: Store) -> None:
    other = KeyRegistry(store, known_stages=[("api1", "dev")], poll_s=0.05)
    await other.start()
    try:
        key, value = await registry.create_key("dave", plans=["basic"])
        await eventually(lambda: other.find(value) is not None)
        await registry.update_key(key.id, enabled=False)
        await eventually(lambda: (found := other.find(value)) is not None and not found.enabled)
    finally:
        await other.close()


async def test_at_most_ten_plans_per_key(registry: KeyRegistry) -> None:
    for index in range(11):
        await registry.put_plan(UsagePlanConfig(f"p{index}", f"P{index}", ()))
    key, _ = await registry.create_key("erin", plans=[f"p{index}" for index in range(10)])
    with pytest.raises(Conflict, match="at most 10"):
        await registry.set_key_plans(key.id, [f"p{index}" for index in range(11)])

"""The admin operations of the key registry: create, change, rotate and delete keys and plans,
and the store records behind them (mixed into :class:`server.keys.registry.KeyRegistry`).

Every change is written to the store first (a key's value is claimed in the digest index before
anything else, so two keys never share a value), then announced (:meth:`_announce`, the
registry's), so every node's copy follows.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence

from server.config.model import UsagePlanConfig
from server.ids import new_api_id
from server.keys.records import (
    KEYS_SET,
    PLANS_SET,
    ApiKey,
    InvalidRecord,
    check_value,
    digest,
    digest_key,
    generate_value,
    key_from_fields,
    key_key,
    key_to_fields,
    plan_from_json,
    plan_key,
    plan_to_json,
)
from server.store.base import Store

__all__ = ["MAX_PLANS_PER_KEY", "Conflict", "NotFoundError", "RegistryChanges"]

log = logging.getLogger("portway.keys")

MAX_PLANS_PER_KEY = 10  # AWS: "one key may be in up to 10 usage plans" (aws-contract.md §3.2)


class NotFoundError(LookupError):
    """No key or plan with that id (admin API: 404 NotFoundException)."""


class Conflict(ValueError):
    """The change would break a rule: a value already in use, a key in two plans of one API
    stage, a plan still referenced (admin API: 409 ConflictException)."""


class RegistryChanges:
    """Admin operations and store records; the registry provides the attributes below."""

    _store: Store
    _clock: Callable[[], float]
    _known_stages: frozenset[tuple[str, str]]

    async def _announce(self, message: str) -> None:
        raise NotImplementedError

    # -- changes (admin API, CLI) -------------------------------------------------------------

    async def create_key(
        self,
        name: str,
        *,
        value: str | None = None,
        enabled: bool = True,
        plans: Iterable[str] = (),
        description: str = "",
        customer_id: str = "",
        key_id: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key; returns it and its value (the only time the value is available). The name
        may be empty, as on AWS (CreateApiKey without a name)."""
        if len(name) > 1024:
            raise InvalidRecord("name: at most 1024 characters")
        value = value if value is not None else generate_value()
        check_value(value)
        key_id = key_id or new_api_id(f"apikey:{name}:{generate_value()}")
        if await self._load_key(key_id) is not None:
            raise Conflict(f"API key {key_id} exists")
        key = self._new_key(key_id, name, value, enabled, tuple(plans), description, customer_id)
        await self._check_plans(key)
        await self._write_key(key, None)
        return key, value

    async def update_key(
        self,
        key_id: str,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        description: str | None = None,
        customer_id: str | None = None,
    ) -> ApiKey:
        key = await self._require_key(key_id)
        changes: dict[str, object] = {"updated": self._clock()}
        if name is not None:
            if not name or len(name) > 1024:
                raise InvalidRecord("name: 1 to 1024 characters")
            changes["name"] = name
        if enabled is not None:
            changes["enabled"] = enabled
        if description is not None:
            changes["description"] = description
        if customer_id is not None:
            changes["customer_id"] = customer_id
        updated = dataclasses.replace(key, **changes)  # type: ignore[arg-type]
        await self._write_key(updated, key)
        return updated

    async def rotate_key(self, key_id: str, value: str | None = None) -> tuple[ApiKey, str]:
        """Give the key a new value; the old value stops working at once on every node."""
        key = await self._require_key(key_id)
        value = value if value is not None else generate_value()
        check_value(value)
        rotated = self._with_value(key, value)
        await self._write_key(rotated, key)
        return rotated, value

    async def delete_key(self, key_id: str) -> None:
        key = await self._require_key(key_id)
        await self._store.delete(key_key(key_id), digest_key(key.digest), f"pw:apikey-seeded:{key_id}")
        await self._store.srem(KEYS_SET, key_id)
        await self._announce(f"key {key_id}")

    async def set_key_plans(self, key_id: str, plans: Iterable[str]) -> ApiKey:
        key = await self._require_key(key_id)
        updated = dataclasses.replace(key, plans=tuple(dict.fromkeys(plans)), updated=self._clock())
        await self._check_plans(updated)
        await self._write_key(updated, key)
        return updated

    async def put_plan(self, plan: UsagePlanConfig) -> UsagePlanConfig:
        """Create or replace a plan (``created`` is kept when it exists)."""
        for entry in plan.stages:
            if self._known_stages and (entry.api_id, entry.stage) not in self._known_stages:
                raise InvalidRecord(f"apiStages: no API stage {entry.api_id}/{entry.stage} on this gateway")
        stored = await self._load_plan(plan.id)
        created = stored.created if stored is not None and stored.created else self._clock()
        plan = dataclasses.replace(plan, created=created)
        await self._write_plan(plan)
        await self._announce(f"plan {plan.id}")
        return plan

    async def delete_plan(self, plan_id: str) -> None:
        if await self._load_plan(plan_id) is None:
            raise NotFoundError(f"Invalid Usage Plan ID specified: {plan_id}")
        for key_id in await self._store.smembers(KEYS_SET):
            key = await self._load_key(key_id)
            if key is not None and plan_id in key.plans:
                await self._write_key(
                    dataclasses.replace(key, plans=tuple(p for p in key.plans if p != plan_id)), key
                )
        await self._store.delete(plan_key(plan_id))
        await self._store.srem(PLANS_SET, plan_id)
        await self._announce(f"plan {plan_id}")

    async def get_key(self, key_id: str) -> ApiKey:
        return await self._require_key(key_id)

    async def get_plan(self, plan_id: str) -> UsagePlanConfig:
        plan = await self._load_plan(plan_id)
        if plan is None:
            raise NotFoundError(f"Invalid Usage Plan ID specified: {plan_id}")
        return plan

    async def list_keys(self) -> list[ApiKey]:
        found = [
            key for key_id in await self._store.smembers(KEYS_SET) if (key := await self._load_key(key_id))
        ]
        return sorted(found, key=lambda key: (key.name, key.id))

    async def list_plans(self) -> list[UsagePlanConfig]:
        found = [
            plan for pid in await self._store.smembers(PLANS_SET) if (plan := await self._load_plan(pid))
        ]
        return sorted(found, key=lambda plan: plan.id)

    # -- store records ------------------------------------------------------------------------

    def _new_key(
        self,
        key_id: str,
        name: str,
        value: str,
        enabled: bool,
        plans: tuple[str, ...],
        description: str,
        customer_id: str = "",
    ) -> ApiKey:
        now = self._clock()
        return ApiKey(
            id=key_id,
            name=name,
            digest=digest(value),
            enabled=enabled,
            plans=tuple(dict.fromkeys(plans)),
            description=description,
            created=now,
            updated=now,
            hint=value[:4],
            customer_id=customer_id,
        )

    def _with_value(self, key: ApiKey, value: str) -> ApiKey:
        return dataclasses.replace(key, digest=digest(value), hint=value[:4], updated=self._clock())

    async def _check_plans(self, key: ApiKey) -> None:
        await self.check_plans(key.plans, who=f"API key {key.id}")

    async def check_plans(self, plan_ids: Sequence[str], *, who: str = "an API key") -> None:
        """Plans one key may be in: every one exists (NotFoundError), no two share an API stage
        (AWS: one plan per stage) and at most ``MAX_PLANS_PER_KEY`` (AWS's limit) (Conflict)."""
        if len(plan_ids) > MAX_PLANS_PER_KEY:
            raise Conflict(f"{who} can be in at most {MAX_PLANS_PER_KEY} usage plans")
        seen: dict[tuple[str, str], str] = {}
        for plan_id in plan_ids:
            plan = await self._load_plan(plan_id)
            if plan is None:
                raise NotFoundError(f"Invalid Usage Plan ID specified: {plan_id}")
            for entry in plan.stages:
                other = seen.setdefault((entry.api_id, entry.stage), plan_id)
                if other != plan_id:
                    raise Conflict(
                        f"{who} cannot be in usage plans {other} and {plan_id}: "
                        f"both cover {entry.api_id}/{entry.stage}"
                    )

    async def _require_key(self, key_id: str) -> ApiKey:
        key = await self._load_key(key_id)
        if key is None:
            raise NotFoundError(f"Invalid API Key identifier specified: {key_id}")
        return key

    async def _load_key(self, key_id: str) -> ApiKey | None:
        fields = await self._store.hgetall(key_key(key_id))
        if not fields:
            return None
        try:
            return key_from_fields(fields)
        except InvalidRecord as exc:
            log.error("ignoring API key %s: %s", key_id, exc)
            return None

    async def _load_plan(self, plan_id: str) -> UsagePlanConfig | None:
        raw = await self._store.get(plan_key(plan_id))
        if raw is None:
            return None
        try:
            return plan_from_json(raw)
        except InvalidRecord as exc:
            log.error("ignoring usage plan %s: %s", plan_id, exc)
            return None

    async def _write_key(self, key: ApiKey, old: ApiKey | None) -> None:
        # The value index is claimed first: two keys can never share a value.
        if (old is None or old.digest != key.digest) and not await self._store.set(
            digest_key(key.digest), key.id.encode(), only_if_absent=True
        ):
            owner = await self._store.get(digest_key(key.digest))
            if owner != key.id.encode():
                raise Conflict("that API key value is already in use")
        await self._store.hset(key_key(key.id), key_to_fields(key))
        await self._store.sadd(KEYS_SET, key.id)
        if old is not None and old.digest != key.digest:
            await self._store.delete(digest_key(old.digest))
        await self._announce(f"key {key.id}")

    async def _write_plan(self, plan: UsagePlanConfig) -> None:
        await self._store.set(plan_key(plan.id), plan_to_json(plan))
        await self._store.sadd(PLANS_SET, plan.id)

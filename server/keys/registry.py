"""The API key and usage plan registry: records in the store, a copy in every node's memory.

Requests never wait for the store to find a key: :meth:`KeyRegistry.find` reads the node's copy.
Changes (admin API, CLI, another node) are written to the store first, then announced on
``pw:keys-changed``; every node reloads the record it names. A version counter
(``pw:keys-version``, bumped by every change) is polled every ``poll_s`` seconds as well, so a
node that missed an announcement (pub/sub is at most once; Redis restarted) catches up within
that bound. Records layout: :mod:`server.keys.records`.

Keys and plans declared in the configuration are applied at every start (:meth:`seed`): plans
are written as declared (the file is their source of truth; ``created`` is kept), keys are
created when absent and otherwise get the file's value and plans, but keep a runtime
enable/disable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Iterable

from server.config.model import ApiKeyConfig, UsagePlanConfig
from server.ids import new_api_id
from server.keys.records import (
    CHANGES_CHANNEL,
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
    matches,
    plan_from_json,
    plan_key,
    plan_to_json,
)
from server.store.base import Store, StoreError
from server.tasks import stop_tasks

__all__ = ["Conflict", "KeyRegistry", "NotFoundError", "config_key_id"]

log = logging.getLogger("portway.keys")

VERSION_KEY = "pw:keys-version"
MAX_PLANS_PER_KEY = 10  # AWS: "one key may be in up to 10 usage plans" (reference §3.2)


class NotFoundError(LookupError):
    """No key or plan with that id (admin API: 404 NotFoundException)."""


class Conflict(ValueError):
    """The change would break a rule: a value already in use, a key in two plans of one API
    stage, a plan still referenced (admin API: 409 ConflictException)."""


def config_key_id(name: str) -> str:
    """The id of a key declared in the configuration: stable across starts and nodes."""
    return new_api_id("apikey:" + name)


class KeyRegistry:
    """See the module docstring. ``known_stages``: the (api id, stage) pairs plans may name."""

    def __init__(
        self,
        store: Store,
        *,
        known_stages: Collection[tuple[str, str]] = (),
        poll_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._known_stages = frozenset(known_stages)
        self._poll_s = poll_s
        self._clock = clock
        self._keys: dict[str, ApiKey] = {}
        self._by_digest: dict[str, ApiKey] = {}
        self._plans: dict[str, UsagePlanConfig] = {}
        self._seen_version: bytes | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending_seed: tuple[tuple[UsagePlanConfig, ...], tuple[ApiKeyConfig, ...]] | None = None
        self.version = 0
        """Bumped whenever this node's copy changes (callers drop derived caches)."""

    # -- lookups (no I/O: the request path) ---------------------------------------------------

    def find(self, value: str) -> ApiKey | None:
        """The key whose value is ``value`` (enabled or not), or None."""
        value_digest = digest(value)
        key = self._by_digest.get(value_digest)
        if key is None or not matches(value_digest, key.digest):
            return None
        return key

    def plan_for(self, key: ApiKey, api_id: str, stage: str) -> UsagePlanConfig | None:
        """The key's plan that covers this API stage (at most one, by construction)."""
        for plan_id in key.plans:
            plan = self._plans.get(plan_id)
            if plan is not None and plan.stage_of(api_id, stage) is not None:
                return plan
        return None

    def resolve(self, value: str | None, api_id: str, stage: str) -> tuple[ApiKey, UsagePlanConfig] | None:
        """The enabled key named by ``value`` and its plan covering this API stage; None when
        the value is missing or unknown, the key disabled, or no plan of it covers the stage
        (every case is AWS's 403 ``Forbidden``)."""
        if not value:
            return None
        key = self.find(value)
        if key is None or not key.enabled:
            return None
        plan = self.plan_for(key, api_id, stage)
        return None if plan is None else (key, plan)

    def key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def plan(self, plan_id: str) -> UsagePlanConfig | None:
        return self._plans.get(plan_id)

    def keys(self) -> list[ApiKey]:
        return sorted(self._keys.values(), key=lambda key: (key.name, key.id))

    def plans(self) -> list[UsagePlanConfig]:
        return sorted(self._plans.values(), key=lambda plan: plan.id)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, plans: Iterable[UsagePlanConfig] = (), keys: Iterable[ApiKeyConfig] = ()) -> None:
        """Apply the configuration's plans and keys, load everything, follow changes.

        With the store unreachable this returns at once (logged) and the poll keeps trying:
        keyed routes answer 403 until the records are loaded."""
        self._pending_seed = (tuple(plans), tuple(keys))
        try:
            await self._seed_pending()
        except StoreError as exc:
            log.warning("key registry: store unavailable at start (%s); will retry", exc)
        self._tasks.append(asyncio.create_task(self._follow(), name="portway-keys-follow"))
        self._tasks.append(asyncio.create_task(self._poll(), name="portway-keys-poll"))

    async def close(self) -> None:
        await stop_tasks(self._tasks)  # not a bare cancel(): see stop_tasks
        self._tasks.clear()

    async def _seed_pending(self) -> None:
        if self._pending_seed is not None:
            await self.seed(*self._pending_seed)
            self._pending_seed = None
        await self.reload()

    async def seed(self, plans: Iterable[UsagePlanConfig], keys: Iterable[ApiKeyConfig]) -> None:
        for plan in plans:
            stored = await self._load_plan(plan.id)
            created = stored.created if stored is not None and stored.created else self._clock()
            await self._write_plan(dataclasses.replace(plan, created=created))
        for declared in keys:
            await self._seed_key(declared)
        await self._announce("all")

    async def _seed_key(self, declared: ApiKeyConfig) -> None:
        key_id = config_key_id(declared.name)
        existing = await self._load_key(key_id)
        if existing is None:
            value = declared.value or generate_value()
            # Several nodes may start together: one creates the key, the others find it.
            if not await self._store.set(f"pw:apikey-seeded:{key_id}", b"1", only_if_absent=True):
                return
            await self._write_key(
                self._new_key(
                    key_id, declared.name, value, declared.enabled, declared.plans, declared.description
                ),
                None,
            )
            if declared.value is None:
                log.warning(
                    "API key %r created with value %s (shown once; only its hash is stored)",
                    declared.name,
                    value,
                )
            return
        changed = existing
        if declared.value is not None and digest(declared.value) != existing.digest:
            changed = self._with_value(changed, declared.value)
        if tuple(declared.plans) != existing.plans or declared.description != existing.description:
            changed = dataclasses.replace(
                changed, plans=tuple(declared.plans), description=declared.description
            )
        if changed is not existing:
            await self._write_key(changed, existing)

    async def reload(self) -> None:
        """Replace this node's copy with the store's records."""
        version = await self._store.get(VERSION_KEY)
        keys: dict[str, ApiKey] = {}
        for key_id in await self._store.smembers(KEYS_SET):
            key = await self._load_key(key_id)
            if key is not None:
                keys[key.id] = key
        plans: dict[str, UsagePlanConfig] = {}
        for plan_id in await self._store.smembers(PLANS_SET):
            plan = await self._load_plan(plan_id)
            if plan is not None:
                plans[plan.id] = plan
        self._keys = keys
        self._by_digest = {key.digest: key for key in keys.values()}
        self._plans = plans
        self._seen_version = version
        self.version += 1

    async def _follow(self) -> None:
        while True:
            try:
                async with self._store.subscribe(CHANGES_CHANNEL) as sub:
                    async for _channel, message in sub:
                        await self._apply(message.decode(errors="replace"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store down: the poll catches up; retry the subscription
                log.debug("key change subscription failed: %s", exc)
            await asyncio.sleep(self._poll_s)

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                if self._pending_seed is not None:
                    await self._seed_pending()
                elif await self._store.get(VERSION_KEY) != self._seen_version:
                    await self.reload()
                if failing:
                    log.warning("key registry: store available again")
                failing = False
            except StoreError as exc:
                if not failing:
                    log.warning("key registry: store unavailable (%s); serving the last copy", exc)
                failing = True

    async def _apply(self, message: str) -> None:
        """Apply ``"<kind> <id> <version>"``: reload that record. When ``version`` is the one
        after the last seen, this node is now current and the poll has nothing to reload;
        otherwise (a change was missed) the poll reloads everything."""
        kind, ident, version = (message.split(" ") + ["", ""])[:3]
        if kind == "key":
            key = await self._load_key(ident)
            old = self._keys.pop(ident, None)
            if old is not None:
                self._by_digest.pop(old.digest, None)
            if key is not None:
                self._keys[key.id] = key
                self._by_digest[key.digest] = key
            self.version += 1
        elif kind == "plan":
            plan = await self._load_plan(ident)
            self._plans.pop(ident, None)
            if plan is not None:
                self._plans[plan.id] = plan
            self.version += 1
        else:
            await self.reload()
            return
        seen = self._seen_version
        if version.isdigit() and seen is not None and seen.isdigit() and int(version) == int(seen) + 1:
            self._seen_version = version.encode()

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
        """A new key; returns it and its value (the only time the value is available)."""
        if not name or len(name) > 1024:
            raise InvalidRecord("name: 1 to 1024 characters")
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
        """Every plan exists; no two of them share an API stage (AWS: one plan per stage); at
        most ``MAX_PLANS_PER_KEY`` plans (AWS's limit)."""
        if len(key.plans) > MAX_PLANS_PER_KEY:
            raise Conflict(f"an API key can be in at most {MAX_PLANS_PER_KEY} usage plans")
        seen: dict[tuple[str, str], str] = {}
        for plan_id in key.plans:
            plan = await self._load_plan(plan_id)
            if plan is None:
                raise NotFoundError(f"Invalid Usage Plan ID specified: {plan_id}")
            for entry in plan.stages:
                other = seen.setdefault((entry.api_id, entry.stage), plan_id)
                if other != plan_id:
                    raise Conflict(
                        f"API key {key.id} cannot be in usage plans {other} and {plan_id}: "
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

    async def _announce(self, message: str) -> None:
        version = await self._store.incr(VERSION_KEY)
        message = f"{message} {version}"
        await self._store.publish(CHANGES_CHANNEL, message.encode())
        await self._apply(message)

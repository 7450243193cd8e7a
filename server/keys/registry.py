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

A store that lost its records (Redis restarted without persistence) must not empty every node's
copy: the store holds an epoch token (``pw:keys-epoch``) that each node remembers. A node whose
remembered token is missing from the store, or replaced by another one, is looking at a store that
lost its records; before it reloads it writes back what it knows (:meth:`_restore`): its copy's
plans and keys, only where the store has no record of that id (changes made since on another node
win), then the configuration's plans and keys. Every node does so, so the store ends up with the
union of what the nodes held. Not restored: usage counters and quota periods (they start again).
A key deleted on one node in the seconds before another node restores its copy (one poll) comes
back from that copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Collection, Iterable

from server.config.model import ApiKeyConfig, UsagePlanConfig
from server.ids import new_api_id
from server.keys.changes import Conflict, NotFoundError, RegistryChanges
from server.keys.records import (
    CHANGES_CHANNEL,
    KEYS_SET,
    PLANS_SET,
    ApiKey,
    digest,
    digest_key,
    generate_value,
    key_key,
    key_to_fields,
    matches,
    plan_key,
    plan_to_json,
)
from server.store.base import Store, StoreError
from server.tasks import stop_tasks

__all__ = ["Conflict", "KeyRegistry", "NotFoundError", "config_key_id"]

log = logging.getLogger("portway.keys")

VERSION_KEY = "pw:keys-version"
EPOCH_KEY = "pw:keys-epoch"


def config_key_id(name: str) -> str:
    """The id of a key declared in the configuration: stable across starts and nodes."""
    return new_api_id("apikey:" + name)


class KeyRegistry(RegistryChanges):
    """See the module docstring; the admin operations are in :class:`RegistryChanges`.
    ``known_stages``: the (api id, stage) pairs plans may name."""

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
        self._following = asyncio.Event()  # the change subscription is active
        self._pending_seed: tuple[tuple[UsagePlanConfig, ...], tuple[ApiKeyConfig, ...]] | None = None
        self._declared: tuple[tuple[UsagePlanConfig, ...], tuple[ApiKeyConfig, ...]] = ((), ())
        self._epoch: bytes | None = None  # the store's epoch token this node's copy came from
        self._reloading = asyncio.Lock()  # poll and change subscription both reload
        self.restores = 0
        """How many times this node wrote its copy back to a store that had lost its records."""
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
        self._pending_seed = self._declared = (tuple(plans), tuple(keys))
        # Follow changes before loading, so nothing another node announces meanwhile is missed.
        self._tasks.append(asyncio.create_task(self._follow(), name="portway-keys-follow"))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(self._poll_s, 1.0)):  # bounded: the store may be down
                await self._following.wait()
        try:
            await self._seed_pending()
        except StoreError as exc:
            log.warning("key registry: store unavailable at start (%s); will retry", exc)
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
            await self._seed_plan(plan)
        for declared in keys:
            await self._seed_key(declared)
        await self._announce("all")

    async def _seed_plan(self, plan: UsagePlanConfig) -> None:
        stored = await self._load_plan(plan.id)
        created = stored.created if stored is not None and stored.created else self._clock()
        await self._write_plan(dataclasses.replace(plan, created=created))

    async def _seed_key(self, declared: ApiKeyConfig) -> None:
        key_id = config_key_id(declared.name)
        existing = await self._load_key(key_id)
        if existing is None:
            value = declared.value or generate_value()
            # Several nodes may start together: one creates the key, the others find it.
            if not await self._store.set(f"pw:apikey-seeded:{key_id}", b"1", only_if_absent=True):
                # Another node is creating it: serve only once its record is there (bounded), so
                # a node never answers 403 for a declared key; if that node died midway, create it.
                for _ in range(100):
                    if await self._load_key(key_id) is not None:
                        return
                    await asyncio.sleep(0.05)
                log.warning(
                    "API key %r: the node creating it did not finish; creating it here", declared.name
                )
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
        """Replace this node's copy with the store's records (restoring them first if the store
        lost them, see the module docstring)."""
        async with self._reloading:
            await self._check_epoch()
            await self._load_all()

    async def _check_epoch(self) -> None:
        epoch = await self._store.get(EPOCH_KEY)
        if epoch is not None and epoch == self._epoch:
            return
        if epoch is None:
            # First start on this store, or the store lost its records: one node draws the new
            # token; every node that had a copy (this one included) restores it below.
            await self._store.set(EPOCH_KEY, secrets.token_hex(8).encode(), only_if_absent=True)
            epoch = await self._store.get(EPOCH_KEY)
        if self._epoch is not None:  # this node has a copy to give back
            await self._restore()
        self._epoch = epoch  # only once restored: a restore cut short by an outage is redone

    async def _restore(self) -> None:
        written = 0
        for plan in list(self._plans.values()):
            if await self._store.set(plan_key(plan.id), plan_to_json(plan), only_if_absent=True):
                written += 1
            await self._store.sadd(PLANS_SET, plan.id)
        for key in list(self._keys.values()):
            if await self._store.hgetall(key_key(key.id)):
                continue  # written since (by another node, or an admin change): it wins
            owner = await self._store.get(digest_key(key.digest))
            if owner is not None and owner != key.id.encode():
                log.warning("API key %s not restored: its value now belongs to %s", key.id, owner)
                continue
            await self._store.set(digest_key(key.digest), key.id.encode())
            await self._store.hset(key_key(key.id), key_to_fields(key))
            await self._store.sadd(KEYS_SET, key.id)
            written += 1
        plans, keys = self._declared
        for plan in plans:
            await self._seed_plan(plan)
        for declared in keys:
            await self._seed_key(declared)
        self.restores += 1
        log.warning(
            "key registry: the store lost its records (restarted without persistence?); "
            "restored %d from this node's copy and the configuration",
            written,
        )
        version = await self._store.incr(VERSION_KEY)
        await self._store.publish(CHANGES_CHANNEL, f"all {version}".encode())

    async def _load_all(self) -> None:
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
                    self._following.set()
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
                elif (
                    await self._store.get(EPOCH_KEY) != self._epoch
                    or await self._store.get(VERSION_KEY) != self._seen_version
                ):
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

    async def _announce(self, message: str) -> None:
        version = await self._store.incr(VERSION_KEY)
        message = f"{message} {version}"
        await self._store.publish(CHANGES_CHANNEL, message.encode())
        await self._apply(message)

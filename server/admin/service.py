"""Admin operations against the key registry and the store (no HTTP here: see :mod:`.http`).

:meth:`AdminService.run` takes an :class:`~server.admin.paths.Operation`, the query and the body
and returns a :class:`Reply` (status and JSON body, AWS's wire shapes: lists under ``item``,
GetUsage's map under ``values``, which boto3 shows as ``items``) or raises :class:`AdminError`
(AWS's error types: 400 BadRequestException, 404 NotFoundException, 409 ConflictException,
503 ServiceUnavailableException).
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from server.admin.csv_import import ImportRow, parse_key_file
from server.admin.patch import (
    KEY_DESCRIPTION_ERROR,
    MAX_KEY_DESCRIPTION,
    PatchConflict,
    PatchNotFound,
    apply_plan_patch,
    key_changes,
)
from server.admin.paths import Operation
from server.admin.shapes import (
    key_shape,
    plan_from_aws,
    plan_shape,
    plan_to_aws_dict,
    usage_plan_key_shape,
)
from server.admin.usage import daily_usage, day_name, days_to_read, parse_date
from server.cache.keys import stage_prefix
from server.config.model import UsagePlanConfig
from server.ids import new_api_id
from server.keys.records import ApiKey, InvalidRecord, digest, digest_key, generate_value
from server.keys.registry import Conflict, KeyRegistry, NotFoundError
from server.store.base import Store, StoreUnavailable
from server.throttle.levels import usage_key

__all__ = ["AdminError", "AdminService", "Reply"]

DEFAULT_LIMIT = 25
MAX_LIMIT = 500
MAX_KEY_NAME = 1024  # AWS's limits on API keys (aws-contract.md §3.2)
MIN_KEY_VALUE = 20
MAX_KEY_VALUE = 128
# The registry's not-found messages name the id; AWS's do not (recorded: "Invalid Usage Plan ID
# specified" for UpdateUsagePlan with an unknown id).
_AWS_NOT_FOUND = ("Invalid Usage Plan ID specified",)
_VALUES_WARNING = "includeValues is ignored: Portway keeps only a digest of each key value"


class AdminError(Exception):
    """An error answer: HTTP ``status``, ``error_type`` (``x-amzn-ErrorType``), ``message``."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def bad_request(message: str) -> AdminError:
    return AdminError(400, "BadRequestException", message)


@dataclass(frozen=True, slots=True)
class Call:
    """One request: path parameters, query, body."""

    params: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Mapping[str, Any] | None = None


def _json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request("The request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise bad_request("The request body must be a JSON object")
    return parsed


def _page(items: Sequence[Any], query: Mapping[str, str]) -> tuple[list[Any], str | None]:
    """``limit`` (default 25, at most 500, as AWS) and ``position`` (opaque: an index here)."""
    try:
        limit = int(query.get("limit") or DEFAULT_LIMIT)
        start = int(query.get("position") or 0)
    except ValueError:
        raise bad_request("limit and position must be integers") from None
    if limit < 1:
        limit = DEFAULT_LIMIT  # AWS accepts limit=-1 (recorded: test_negative_get_usage_plan_api_keys)
    if limit > MAX_LIMIT or start < 0:
        raise bad_request(f"limit is 1 to {MAX_LIMIT}; position is what a previous page returned")
    end = start + limit
    return list(items[start:end]), (str(end) if end < len(items) else None)


def _listing(items: list[Any], position: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"item": items, **extra}
    if position is not None:
        body["position"] = position
    return body


def _name_filter(name: str | None) -> Callable[[str], bool]:
    return (lambda _: True) if not name else (lambda candidate: candidate.startswith(name))


class AdminService:
    """See the module docstring. ``websocket_apis``: ids of WebSocket APIs (their plan
    throttle keys are route keys as written)."""

    def __init__(
        self,
        registry: KeyRegistry,
        store: Store,
        websocket_apis: Collection[str] = (),
        rest_stages: Collection[tuple[str, str]] = (),
    ) -> None:
        self._keys = registry
        self._store = store
        self._websocket_apis = frozenset(websocket_apis)
        self._rest_stages = frozenset(rest_stages)
        self._handlers: dict[str, Callable[[Call], Awaitable[Reply]]] = {
            "GetApiKeys": self._get_api_keys,
            "CreateApiKey": self._create_api_key,
            "ImportApiKeys": self._import_api_keys,
            "GetApiKey": self._get_api_key,
            "UpdateApiKey": self._update_api_key,
            "DeleteApiKey": self._delete_api_key,
            "RotateApiKey": self._rotate_api_key,
            "GetUsagePlans": self._get_usage_plans,
            "CreateUsagePlan": self._create_usage_plan,
            "GetUsagePlan": self._get_usage_plan,
            "PutUsagePlan": self._put_usage_plan,
            "UpdateUsagePlan": self._update_usage_plan,
            "DeleteUsagePlan": self._delete_usage_plan,
            "GetUsagePlanKeys": self._get_usage_plan_keys,
            "CreateUsagePlanKey": self._create_usage_plan_key,
            "GetUsagePlanKey": self._get_usage_plan_key,
            "DeleteUsagePlanKey": self._delete_usage_plan_key,
            "GetUsage": self._get_usage,
            "FlushStageCache": self._flush_stage_cache,
        }

    async def run(self, operation: Operation, query: Mapping[str, str], body: bytes) -> Reply:
        handler = self._handlers[operation.name]
        try:
            return await handler(Call(operation.params, query, body))
        except (NotFoundError, PatchNotFound) as exc:
            message = str(exc)
            message = next((m for m in _AWS_NOT_FOUND if message.startswith(m + ":")), message)
            raise AdminError(404, "NotFoundException", message) from exc
        except (Conflict, PatchConflict) as exc:
            raise AdminError(409, "ConflictException", str(exc)) from exc
        except InvalidRecord as exc:
            raise bad_request(str(exc)) from exc
        except StoreUnavailable as exc:
            raise AdminError(503, "ServiceUnavailableException", f"store unavailable: {exc}") from exc

    # -- API keys -----------------------------------------------------------------------------

    async def _get_api_keys(self, call: Call) -> Reply:
        wanted = _name_filter(call.query.get("name"))
        customer = call.query.get("customerId")
        keys = [
            key
            for key in await self._keys.list_keys()
            if wanted(key.name) and (not customer or key.customer_id == customer)
        ]
        page, position = _page(keys, call.query)
        extra = {"warnings": [_VALUES_WARNING]} if call.query.get("includeValues") == "true" else {}
        return Reply(200, _listing([key_shape(key) for key in page], position, **extra))

    async def _create_api_key(self, call: Call) -> Reply:
        raw = _json(call.body)
        name, value = raw.get("name"), raw.get("value")
        # AWS's checks and messages, in AWS's order (recorded: LocalStack
        # test_create_api_key_with_invalid_name/_value, test_update_api_key_invalid_description_length).
        if isinstance(name, str) and len(name) > MAX_KEY_NAME:
            raise bad_request(f"Invalid API Key name, can be at most {MAX_KEY_NAME} characters.")
        if value is not None and not isinstance(value, str):
            raise bad_request("value: a string")
        if value and len(value) < MIN_KEY_VALUE:
            raise bad_request(f"API Key value should be at least {MIN_KEY_VALUE} characters")
        if value and len(value) > MAX_KEY_VALUE:
            raise bad_request(f"API Key value exceeds maximum size of {MAX_KEY_VALUE} characters")
        if len(str(raw.get("description") or "")) > MAX_KEY_DESCRIPTION:
            raise bad_request(KEY_DESCRIPTION_ERROR)
        if name is not None and not isinstance(name, str):
            raise bad_request("name: a string")
        key, value = await self._keys.create_key(
            name or "",  # AWS creates a nameless key too (recorded)
            value=value or None,
            enabled=raw.get("enabled") is True,  # AWS's default: created disabled
            description=str(raw.get("description") or ""),
            customer_id=str(raw.get("customerId") or ""),
        )
        return Reply(201, key_shape(key, value))

    async def _get_api_key(self, call: Call) -> Reply:
        return Reply(200, key_shape(await self._keys.get_key(call.params["apiKey"])))

    async def _update_api_key(self, call: Call) -> Reply:
        changes = key_changes(_json(call.body).get("patchOperations"))
        if not changes:
            key = await self._keys.get_key(call.params["apiKey"])
        else:
            key = await self._keys.update_key(call.params["apiKey"], **changes)
        # UpdateApiKey's answer carries "tags" (recorded), CreateApiKey's and GetApiKeys' do not.
        return Reply(200, {**key_shape(key), "tags": {}})

    async def _delete_api_key(self, call: Call) -> Reply:
        await self._keys.delete_key(call.params["apiKey"])
        return Reply(202)

    async def _rotate_api_key(self, call: Call) -> Reply:
        value = _json(call.body).get("value")
        if value is not None and not isinstance(value, str):
            raise bad_request("value: a string")
        key, value = await self._keys.rotate_key(call.params["apiKey"], value or None)
        return Reply(200, key_shape(key, value))

    async def _import_api_keys(self, call: Call) -> Reply:
        if call.query.get("format") != "csv":
            raise bad_request("format: only csv is supported")
        fail_on_warnings = call.query.get("failonwarnings", "").lower() == "true"
        try:
            text = call.body.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("the API key file is not UTF-8 text") from None
        parsed = parse_key_file(text)
        warnings = list(parsed.warnings)
        rows: list[ImportRow] = []
        for row in parsed.rows:
            problem = await self._plans_problem(row.plans or ())
            if problem is None:
                rows.append(row)
            else:
                warnings.append(f"line {row.line}: {problem}")
        if fail_on_warnings and warnings:
            raise bad_request("; ".join(warnings))
        ids: list[str] = []
        for row in rows:
            try:
                ids.append(await self._import_row(row))
            except (InvalidRecord, Conflict, NotFoundError) as exc:
                warnings.append(f"line {row.line}: {exc}")
        if fail_on_warnings and warnings:
            raise bad_request("; ".join(warnings))
        return Reply(201, {"ids": ids, "warnings": warnings})

    async def _plans_problem(self, plan_ids: Sequence[str]) -> str | None:
        try:
            await self._keys.check_plans(plan_ids)
        except (NotFoundError, Conflict) as exc:
            return str(exc)
        return None

    async def _import_row(self, row: ImportRow) -> str:
        owner = await self._store.get(digest_key(digest(row.value)))
        if owner is None:
            key, _ = await self._keys.create_key(
                row.name,
                value=row.value,
                enabled=row.enabled,
                plans=row.plans or (),
                description=row.description,
            )
            return key.id
        key_id = owner.decode()
        await self._keys.update_key(key_id, name=row.name, enabled=row.enabled, description=row.description)
        if row.plans is not None:
            await self._keys.set_key_plans(key_id, row.plans)
        return key_id

    # -- usage plans --------------------------------------------------------------------------

    def _plan_shape(self, plan: UsagePlanConfig) -> dict[str, Any]:
        return plan_shape(plan, self._websocket_apis)

    async def _get_usage_plans(self, call: Call) -> Reply:
        plans = await self._keys.list_plans()
        key_id = call.query.get("keyId")
        if key_id:
            key = await self._keys.get_key(key_id)
            plans = [plan for plan in plans if plan.id in key.plans]
        page, position = _page(plans, call.query)
        return Reply(200, _listing([self._plan_shape(plan) for plan in page], position))

    async def _create_usage_plan(self, call: Call) -> Reply:
        raw = _json(call.body)
        if not isinstance(raw.get("name"), str) or not raw["name"]:
            raise bad_request("name is required")
        plan = plan_from_aws(raw, new_api_id(f"plan:{raw['name']}:{generate_value()}"), self._websocket_apis)
        return Reply(201, self._plan_shape(await self._keys.put_plan(plan)))

    async def _get_usage_plan(self, call: Call) -> Reply:
        # GetUsagePlan and UpdateUsagePlan answer with "tags" (recorded), Create and list do not.
        plan = await self._keys.get_plan(call.params["usagePlanId"])
        return Reply(200, {**self._plan_shape(plan), "tags": {}})

    async def _put_usage_plan(self, call: Call) -> Reply:
        plan = plan_from_aws(_json(call.body), call.params["usagePlanId"], self._websocket_apis)
        await self._check_key_stages(plan)
        return Reply(200, self._plan_shape(await self._keys.put_plan(plan)))

    async def _update_usage_plan(self, call: Call) -> Reply:
        plan = await self._keys.get_plan(call.params["usagePlanId"])
        raw = plan_to_aws_dict(plan, self._websocket_apis)
        patched = apply_plan_patch(raw, _json(call.body).get("patchOperations"), self._websocket_apis)
        updated = plan_from_aws(patched, plan.id, self._websocket_apis)
        await self._check_key_stages(updated)
        return Reply(200, {**self._plan_shape(await self._keys.put_plan(updated)), "tags": {}})

    async def _check_key_stages(self, plan: UsagePlanConfig) -> None:
        """A key may be in one plan per API stage: a changed plan must not break that."""
        stages = {(entry.api_id, entry.stage) for entry in plan.stages}
        others = {other.id: other for other in await self._keys.list_plans() if other.id != plan.id}
        for key in await self._keys.list_keys():
            if plan.id not in key.plans:
                continue
            for other_id in key.plans:
                other = others.get(other_id)
                if other is None:
                    continue
                shared = stages & {(entry.api_id, entry.stage) for entry in other.stages}
                if shared:
                    api_id, stage = sorted(shared)[0]
                    raise Conflict(
                        f"API key {key.id} is in usage plans {plan.id} and {other.id}: "
                        f"both would cover {api_id}:{stage}"
                    )

    async def _delete_usage_plan(self, call: Call) -> Reply:
        await self._keys.delete_plan(call.params["usagePlanId"])
        return Reply(202)

    # -- usage plan keys ----------------------------------------------------------------------

    async def _plan_keys(self, plan_id: str) -> list[ApiKey]:
        await self._keys.get_plan(plan_id)  # 404 for an unknown plan
        return [key for key in await self._keys.list_keys() if plan_id in key.plans]

    async def _plan_key(self, plan_id: str, key_id: str) -> ApiKey:
        await self._keys.get_plan(plan_id)
        key = await self._keys.get_key(key_id)
        if plan_id not in key.plans:
            raise NotFoundError(f"Invalid Usage Plan Key identifier specified: {key_id}")
        return key

    async def _get_usage_plan_keys(self, call: Call) -> Reply:
        wanted = _name_filter(call.query.get("name"))
        try:
            plan_keys = await self._plan_keys(call.params["usagePlanId"])
        except NotFoundError:
            plan_keys = []  # AWS lists an unknown plan's keys as none (recorded), not a 404
        keys = [key for key in plan_keys if wanted(key.name)]
        page, position = _page(keys, call.query)
        return Reply(200, _listing([usage_plan_key_shape(key) for key in page], position))

    async def _create_usage_plan_key(self, call: Call) -> Reply:
        raw = _json(call.body)
        key_id, key_type = raw.get("keyId"), raw.get("keyType")
        if not isinstance(key_id, str) or not key_id:
            raise bad_request("keyId is required")
        if key_type != "API_KEY":
            raise bad_request("keyType: API_KEY is the only type")
        plan_id = call.params["usagePlanId"]
        await self._keys.get_plan(plan_id)
        key = await self._keys.get_key(key_id)
        if plan_id in key.plans:
            raise Conflict(f"API key {key_id} is already in usage plan {plan_id}")
        key = await self._keys.set_key_plans(key_id, (*key.plans, plan_id))
        return Reply(201, usage_plan_key_shape(key))

    async def _get_usage_plan_key(self, call: Call) -> Reply:
        key = await self._plan_key(call.params["usagePlanId"], call.params["keyId"])
        return Reply(200, usage_plan_key_shape(key))

    async def _delete_usage_plan_key(self, call: Call) -> Reply:
        plan_id = call.params["usagePlanId"]
        key = await self._plan_key(plan_id, call.params["keyId"])
        await self._keys.set_key_plans(key.id, [p for p in key.plans if p != plan_id])
        return Reply(202)

    # -- usage --------------------------------------------------------------------------------

    async def _get_usage(self, call: Call) -> Reply:
        plan = await self._keys.get_plan(call.params["usagePlanId"])
        start = parse_date(call.query.get("startDate"), "startDate")
        end = parse_date(call.query.get("endDate"), "endDate")
        days = days_to_read(plan.quota, plan.created, start, end)
        key_id = call.query.get("keyId")
        if key_id:
            keys = [await self._keys.get_key(key_id)]
        else:
            keys = [key for key in await self._keys.list_keys() if plan.id in key.plans]
        page, position = _page(keys, call.query)
        values: dict[str, list[list[int]]] = {}
        for key in page:
            counts = await self._daily_counts(plan.id, key.id, days)
            values[key.id] = daily_usage(plan.quota, plan.created, start, end, counts)
        body: dict[str, Any] = {
            "usagePlanId": plan.id,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "values": values,
        }
        if position is not None:
            body["position"] = position
        return Reply(200, body)

    async def _daily_counts(self, plan_id: str, key_id: str, days: Sequence[datetime.date]) -> dict[str, int]:
        names = [day_name(day) for day in days]
        raw = await asyncio.gather(*(self._store.get(usage_key(plan_id, key_id, name)) for name in names))
        counts: dict[str, int] = {}
        for name, value in zip(names, raw, strict=True):
            if value is not None:
                try:
                    counts[name] = int(value)
                except ValueError:
                    continue
        return counts

    # -- stage cache --------------------------------------------------------------------------

    async def _flush_stage_cache(self, call: Call) -> Reply:
        """AWS's FlushStageCache: every entry of one REST stage, on every node sharing the store
        (202, no body). AWS's messages for an unknown API or stage."""
        api_id, stage = call.params["restApiId"], call.params["stageName"]
        if not any(known == api_id for known, _ in self._rest_stages):
            raise AdminError(404, "NotFoundException", "Invalid API identifier specified")
        if (api_id, stage) not in self._rest_stages:
            raise AdminError(404, "NotFoundException", "Invalid stage identifier specified")
        await self._store.cache_flush(stage_prefix(api_id, stage))
        return Reply(202)

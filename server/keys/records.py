"""API keys and usage plans as stored records (aws-contract.md §3.2, §3.3).

A key's value is never stored: only its SHA-256 digest (:func:`digest`), so a store dump or a
snapshot file does not reveal usable keys. Values are random and at least 20 characters (AWS's
rule), so an unsalted digest cannot be reversed by guessing. A request's ``x-api-key`` is
digested and looked up by digest; the match is confirmed with a constant-time comparison.

Store layout (every node reads the same records; names start ``pw:`` so the embedded store's
state file keeps them, see :mod:`server.store.memory`):

* ``pw:apikey:<id>``: hash (:func:`key_to_fields`);
* ``pw:apikeys``: set of key ids; ``pw:apikey-digest:<digest>``: the id holding that value;
* ``pw:plan:<id>``: string, the plan as JSON (:func:`plan_to_json`); ``pw:plans``: set of ids;
* channel ``pw:keys-changed``: ``key <id>`` / ``plan <id>`` after every change.

Pure core: imports no I/O library.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from server.config.model import PlanStage, QuotaSettings, ThrottleSettings, UsagePlanConfig

__all__ = [
    "CHANGES_CHANNEL",
    "KEYS_SET",
    "PLANS_SET",
    "ApiKey",
    "InvalidRecord",
    "check_value",
    "digest",
    "digest_key",
    "generate_value",
    "key_from_fields",
    "key_key",
    "key_to_fields",
    "matches",
    "plan_from_json",
    "plan_key",
    "plan_to_json",
    "plan_to_dict",
]

KEYS_SET = "pw:apikeys"
PLANS_SET = "pw:plans"
CHANGES_CHANNEL = "pw:keys-changed"

MAX_METHOD_THROTTLES = 20  # per API stage of a plan (aws-contract.md §3.3)
_VALUE_RE = re.compile(r"[A-Za-z0-9]{20,128}")
_ALPHABET = string.ascii_letters + string.digits


class InvalidRecord(ValueError):
    """A stored record or an admin request that does not describe a valid key or plan."""


def key_key(key_id: str) -> str:
    return f"pw:apikey:{key_id}"


def digest_key(value_digest: str) -> str:
    return f"pw:apikey-digest:{value_digest}"


def plan_key(plan_id: str) -> str:
    return f"pw:plan:{plan_id}"


def digest(value: str) -> str:
    """The stored form of a key value: SHA-256, hex."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def matches(value_digest: str, stored_digest: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(value_digest, stored_digest)


def check_value(value: str) -> None:
    """AWS's rule for key values: 20 to 128 letters and digits."""
    if not _VALUE_RE.fullmatch(value):
        raise InvalidRecord("an API key value is 20 to 128 letters and digits")


def generate_value() -> str:
    """A new key value: 40 random letters and digits (like AWS's), from the OS's CSPRNG."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(40))


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key as stored. ``hint``: the value's first 4 characters, to tell keys apart in
    listings (AWS shows the whole value; Portway cannot, it keeps only the digest)."""

    id: str
    name: str
    digest: str
    enabled: bool = True
    plans: tuple[str, ...] = ()
    description: str = ""
    created: float = 0.0
    updated: float = 0.0
    hint: str = ""
    customer_id: str = ""

    def public(self) -> dict[str, Any]:
        """The admin API's view (AWS ``ApiKey`` field names; never the digest)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "customerId": self.customer_id,
            "createdDate": self.created,
            "lastUpdatedDate": self.updated,
            "valueHint": self.hint,
            "usagePlanIds": list(self.plans),
        }


def key_to_fields(key: ApiKey) -> dict[str, str]:
    return {
        "id": key.id,
        "name": key.name,
        "digest": key.digest,
        "enabled": "1" if key.enabled else "0",
        "plans": ",".join(key.plans),
        "description": key.description,
        "created": repr(key.created),
        "updated": repr(key.updated),
        "hint": key.hint,
        "customerId": key.customer_id,
    }


def key_from_fields(fields: Mapping[str, bytes]) -> ApiKey:
    try:
        text = {name: raw.decode() for name, raw in fields.items()}
        plans = tuple(plan for plan in text.get("plans", "").split(",") if plan)
        return ApiKey(
            id=text["id"],
            name=text["name"],
            digest=text["digest"],
            enabled=text.get("enabled", "1") == "1",
            plans=plans,
            description=text.get("description", ""),
            created=float(text.get("created", "0")),
            updated=float(text.get("updated", "0")),
            hint=text.get("hint", ""),
            customer_id=text.get("customerId", ""),
        )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidRecord(f"bad API key record: {exc}") from exc


def _throttle_dict(settings: ThrottleSettings | None) -> dict[str, Any] | None:
    return None if settings is None else {"rateLimit": settings.rate, "burstLimit": settings.burst}


def plan_to_dict(plan: UsagePlanConfig) -> dict[str, Any]:
    """AWS ``UsagePlan`` field names (``apiStages[].throttle`` keyed by route key)."""
    quota = plan.quota
    return {
        "id": plan.id,
        "name": plan.name,
        "description": plan.description,
        "apiStages": [
            {
                "apiId": entry.api_id,
                "stage": entry.stage,
                "throttle": {route: _throttle_dict(t) for route, t in entry.method_throttles.items()},
            }
            for entry in plan.stages
        ],
        "throttle": _throttle_dict(plan.throttle),
        "quota": None
        if quota is None
        else {"limit": quota.limit, "period": quota.period, "offset": quota.offset},
        "createdDate": plan.created,
    }


def plan_to_json(plan: UsagePlanConfig) -> bytes:
    return orjson.dumps(plan_to_dict(plan))


def _throttle_from(raw: Any, where: str) -> ThrottleSettings | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidRecord(f"{where}: expected an object with rateLimit and burstLimit")
    rate, burst = raw.get("rateLimit"), raw.get("burstLimit")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < float("inf"):
        raise InvalidRecord(f"{where}.rateLimit: a number >= 0")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        raise InvalidRecord(f"{where}.burstLimit: an integer >= 0")
    return ThrottleSettings(float(rate), burst)


def _quota_from(raw: Any) -> QuotaSettings | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidRecord("quota: expected an object with limit, period and offset")
    limit, period, offset = raw.get("limit"), raw.get("period", "DAY"), raw.get("offset", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidRecord("quota.limit: an integer >= 0")
    if period not in ("DAY", "WEEK", "MONTH"):
        raise InvalidRecord("quota.period: DAY, WEEK or MONTH")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= max(limit - 1, 0):
        raise InvalidRecord("quota.offset: an integer >= 0 and below the limit")
    return QuotaSettings(limit, period, offset)


def plan_from_dict(raw: Any) -> UsagePlanConfig:
    """Parse (and validate) a plan in :func:`plan_to_dict`'s shape: stored or sent by an admin."""
    if not isinstance(raw, Mapping):
        raise InvalidRecord("a usage plan is a JSON object")
    plan_id, name = raw.get("id"), raw.get("name") or raw.get("id")
    if not isinstance(plan_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", plan_id):
        raise InvalidRecord("id: 1 to 128 letters, digits, '_', '.' or '-'")
    if not isinstance(name, str):
        raise InvalidRecord("name: a string")
    stages: list[PlanStage] = []
    for index, entry in enumerate(raw.get("apiStages") or ()):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("apiId"), str):
            raise InvalidRecord(f"apiStages[{index}]: an object with apiId and stage")
        stage = entry.get("stage")
        if not isinstance(stage, str):
            raise InvalidRecord(f"apiStages[{index}].stage: a string")
        throttles: dict[str, ThrottleSettings] = {}
        for route, value in (entry.get("throttle") or {}).items():
            settings = _throttle_from(value, f"apiStages[{index}].throttle[{route!r}]")
            if settings is not None:
                throttles[str(route)] = settings
        if len(throttles) > MAX_METHOD_THROTTLES:
            raise InvalidRecord(
                f"apiStages[{index}].throttle: at most {MAX_METHOD_THROTTLES} methods per stage (AWS)"
            )
        stages.append(PlanStage(entry["apiId"], stage, MappingProxyType(throttles)))
    created = raw.get("createdDate")
    return UsagePlanConfig(
        id=plan_id,
        name=name,
        stages=tuple(stages),
        throttle=_throttle_from(raw.get("throttle"), "throttle"),
        quota=_quota_from(raw.get("quota")),
        description=str(raw.get("description") or ""),
        created=float(created)
        if isinstance(created, int | float) and not isinstance(created, bool)
        else None,
    )


def plan_from_json(data: bytes) -> UsagePlanConfig:
    try:
        return plan_from_dict(orjson.loads(data))
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"bad usage plan record: {exc}") from exc

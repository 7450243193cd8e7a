"""AWS control-plane JSON shapes of keys and usage plans, and the two spellings of a route key.

Usage plans name per-method throttles AWS's way, ``"<resourcePath>/<METHOD>"`` (``/pets/GET``;
the root resource is ``//GET``); Portway's records use route keys (``GET /pets``). The admin API
speaks AWS's form and accepts either; WebSocket route keys (``$connect``, ``sendMessage``) are
the same in both.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from server.config.model import UsagePlanConfig
from server.config.route_keys import is_route_key, normalize, to_aws
from server.keys.records import ApiKey, InvalidRecord, plan_from_dict, plan_to_dict

__all__ = [
    "aws_route_key",
    "key_shape",
    "plan_from_aws",
    "plan_shape",
    "plan_to_aws_dict",
    "route_key",
    "usage_plan_key_shape",
]


def route_key(key: str, *, websocket: bool = False) -> str:
    """Portway's route key for a throttle-map key (:func:`server.config.route_keys.normalize`);
    InvalidRecord if it names no method and path."""
    normalized = normalize(key, websocket=websocket)
    if websocket or normalized == "$default" or is_route_key(normalized):
        return normalized
    raise InvalidRecord(f"throttle key {key!r}: use '/path/METHOD' (AWS) or 'METHOD /path'")


def aws_route_key(key: str, *, websocket: bool = False) -> str:
    """AWS's form of a Portway route key (:func:`server.config.route_keys.to_aws`)."""
    return to_aws(key, websocket=websocket)


def _drop_none(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in raw.items() if value is not None}


def key_shape(key: ApiKey, value: str | None = None) -> dict[str, Any]:
    """An ``ApiKey`` (AWS field names); ``value`` only when just created or rotated. An empty
    ``name``, ``description`` or ``customerId`` is left out, as AWS does (recorded)."""
    shape = {
        k: v for k, v in key.public().items() if not (k in ("name", "description", "customerId") and v == "")
    }
    shape["stageKeys"] = []
    if value is not None:
        shape["value"] = value
    return shape


def usage_plan_key_shape(key: ApiKey) -> dict[str, Any]:
    """A ``UsagePlanKey``: AWS also returns the key's value, which Portway does not keep."""
    return {"id": key.id, "type": "API_KEY", "name": key.name}


def plan_to_aws_dict(plan: UsagePlanConfig, websocket_apis: Collection[str] = ()) -> dict[str, Any]:
    """:func:`~server.keys.records.plan_to_dict` with AWS's throttle-map keys."""
    raw = plan_to_dict(plan)
    for entry in raw["apiStages"]:
        websocket = entry["apiId"] in websocket_apis
        entry["throttle"] = {
            aws_route_key(name, websocket=websocket): value for name, value in entry["throttle"].items()
        }
    return raw


def plan_shape(plan: UsagePlanConfig, websocket_apis: Collection[str] = ()) -> dict[str, Any]:
    """A ``UsagePlan`` as the admin API returns it (no nulls)."""
    shape = _drop_none(plan_to_aws_dict(plan, websocket_apis))
    shape.pop("createdDate", None)  # not in AWS's UsagePlan
    if shape.get("description") == "":
        del shape["description"]  # AWS leaves an unset description out (recorded)
    for entry in shape.get("apiStages", ()):
        if not entry["throttle"]:
            del entry["throttle"]
    return shape


def plan_from_aws(raw: Any, plan_id: str, websocket_apis: Collection[str] = ()) -> UsagePlanConfig:
    """A plan from an admin request (``CreateUsagePlan`` body, a patched plan, a plan file):
    throttle-map keys in either form; ``id`` is ``plan_id``. Raises InvalidRecord."""
    if not isinstance(raw, Mapping):
        raise InvalidRecord("a usage plan is a JSON object")
    stages = raw.get("apiStages") or []
    if not isinstance(stages, list):
        raise InvalidRecord("apiStages: a list")
    converted = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(stages):
        if not isinstance(entry, Mapping):
            raise InvalidRecord(f"apiStages[{index}]: an object with apiId and stage")
        pair = (str(entry.get("apiId")), str(entry.get("stage")))
        if pair in seen:
            raise InvalidRecord(f"apiStages: {pair[0]}:{pair[1]} is listed twice")
        seen.add(pair)
        throttle = entry.get("throttle") or {}
        if not isinstance(throttle, Mapping):
            raise InvalidRecord(f"apiStages[{index}].throttle: an object")
        websocket = pair[0] in websocket_apis
        routes: dict[str, Any] = {}
        for name, value in throttle.items():
            key = route_key(str(name), websocket=websocket)
            if key in routes:
                raise InvalidRecord(f"apiStages[{index}].throttle: {name!r} names a route twice")
            routes[key] = value
        converted.append({**entry, "throttle": routes})
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidRecord("name: a non-empty string")
    body = {**raw, "id": plan_id, "apiStages": converted}
    body.pop("createdDate", None)
    return plan_from_dict(body)

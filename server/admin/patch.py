"""AWS patch operations (``patchOperations``) on API keys and usage plans.

Supported (anything else is a 400 BadRequestException naming the operation):

* API key: ``replace`` ``/name``, ``/description``, ``/customerId``, ``/enabled`` (``"true"`` or
  ``"false"``);
* usage plan: ``replace`` ``/name``, ``/description``; ``add``/``replace``
  ``/throttle/rateLimit``, ``/throttle/burstLimit``, ``/quota/limit``, ``/quota/period``,
  ``/quota/offset``; ``remove`` ``/throttle``, ``/quota``; ``add``/``remove`` ``/apiStages``
  with value ``"apiId:stage"``; ``add``/``replace``
  ``/apiStages/<apiId>:<stage>/throttle/<resourcePath>/<METHOD>/rateLimit`` (or ``burstLimit``;
  ``resourcePath`` JSON-Pointer escaped, ``~1pets``, or written out, ``pets``; a WebSocket
  API names the route key instead of path and method); ``remove`` of that entry
  (``.../throttle/<resourcePath>/<METHOD>``) or of the whole map (``.../throttle``).

Operations apply in order to the plan in AWS's JSON shape; the caller validates the result
(a throttle needs both limits once all operations are applied).

Pure core: imports no I/O library.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from server.admin.shapes import aws_route_key, route_key
from server.keys.records import InvalidRecord

__all__ = ["PatchConflict", "PatchError", "PatchNotFound", "apply_plan_patch", "key_changes"]


class PatchError(InvalidRecord):
    """A patch operation that is malformed or not supported (400 BadRequestException)."""


class PatchConflict(ValueError):
    """The operation adds something that is already there (409 ConflictException)."""


class PatchNotFound(LookupError):
    """The operation removes something that is not there (404 NotFoundException)."""


def _ops(raw: Any) -> list[tuple[str, str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise PatchError("patchOperations: a list of {op, path, value}")
    ops = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise PatchError(f"patchOperations[{index}]: an object with op, path and value")
        op, path = entry.get("op"), entry.get("path")
        if not isinstance(op, str) or not isinstance(path, str) or not path.startswith("/"):
            raise PatchError(f"patchOperations[{index}]: op and path ('/...') are required")
        ops.append((op, path, entry.get("value")))
    return ops


def _unsupported(op: str, path: str) -> PatchError:
    return PatchError(f"Invalid patch operation specified: {op} {path} is not supported")


_KEY_PATHS = "[/description, /enabled, /name, /customerId]"
# AWS's limit on an API key's description (recorded: 125,001 characters are refused).
MAX_KEY_DESCRIPTION = 125_000
KEY_DESCRIPTION_ERROR = "Invalid API Key description specified."


def _bad_key_path(op: str, path: str) -> PatchError:
    # AWS's wording, two spaces included (recorded: LocalStack test_update_api_key_immutable_field).
    return PatchError(f"Invalid patch path  '{path}' specified for op '{op}'. Must be one of: {_KEY_PATHS}")


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise PatchError(f"{path}: a string value is required")
    return value


def _int(value: Any, path: str) -> int:
    try:
        number = int(_text(value, path).strip())
    except ValueError:
        raise PatchError(f"{path}: an integer") from None
    return number


def _number(value: Any, path: str) -> float:
    try:
        number = float(_text(value, path).strip())
    except ValueError:
        raise PatchError(f"{path}: a number") from None
    if not math.isfinite(number):
        raise PatchError(f"{path}: a finite number")
    return number


def key_changes(raw_ops: Any) -> dict[str, Any]:
    """The ``update_key`` arguments (``name``, ``description``, ``customer_id``, ``enabled``)
    that ``patchOperations`` asks for, validated with AWS's messages (aws-contract.md §3.2)."""
    changes: dict[str, Any] = {}
    for op, path, value in _ops(raw_ops):
        if path not in ("/name", "/description", "/customerId", "/enabled"):
            raise _bad_key_path(op, path)
        if op != "replace":
            raise _unsupported(op, path)
        if path == "/name":
            changes["name"] = _text(value, path)
        elif path == "/description":
            changes["description"] = "" if value is None else _text(value, path)
            if len(changes["description"]) > MAX_KEY_DESCRIPTION:
                raise PatchError(KEY_DESCRIPTION_ERROR)
        elif path == "/customerId":
            changes["customer_id"] = "" if value is None else _text(value, path)
        else:
            # AWS reads the value as Java's Boolean.parseBoolean does: "true" (any case) or false
            # (recorded: "not-a-boolean" is accepted and gives false).
            changes["enabled"] = isinstance(value, str) and value.strip().lower() == "true"
    return changes


def _pointer(path: str) -> list[str]:
    """JSON Pointer segments, unescaped (``~1`` is ``/``, ``~0`` is ``~``)."""
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _no_stage(api_id: str, stage: str, plan_id: str = "") -> str:
    # AWS's wording (recorded: LocalStack test_usage_plan_crud), "usageplan" in one word.
    return f"Invalid API Stage {{api: {api_id}, stage: {stage}}} specified for usageplan {plan_id}".rstrip()


INVALID_STAGE = "Invalid API Stage specified"


def _stage_entry(plan: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    api_id, sep, stage = name.partition(":")
    if not sep or not api_id or not stage:
        raise PatchError(f"{path}: name the API stage as apiId:stage")
    for entry in plan["apiStages"]:
        if entry["apiId"] == api_id and entry["stage"] == stage:
            entry_dict: dict[str, Any] = entry
            return entry_dict
    raise PatchNotFound(_no_stage(api_id, stage, str(plan.get("id") or "")))


def _stages_op(plan: dict[str, Any], op: str, path: str, value: Any) -> None:
    # No value, or not apiId:stage: AWS's 400 "Invalid API Stage specified" (recorded).
    api_id, sep, stage = (value if isinstance(value, str) else "").partition(":")
    if not sep or not api_id or not stage:
        raise PatchError(INVALID_STAGE)
    present = [e for e in plan["apiStages"] if e["apiId"] == api_id and e["stage"] == stage]
    if op == "add":
        if present:
            raise PatchConflict(f"API stage {api_id}:{stage} is already in the usage plan")
        plan["apiStages"].append({"apiId": api_id, "stage": stage, "throttle": {}})
    elif op == "remove":
        if not present:
            raise PatchNotFound(_no_stage(api_id, stage, str(plan.get("id") or "")))
        plan["apiStages"].remove(present[0])
    else:
        raise _unsupported(op, path)


def _method_throttle_op(
    plan: dict[str, Any], op: str, path: str, value: Any, websocket_apis: Collection[str]
) -> None:
    parts = _pointer(path)  # apiStages, <api>:<stage>, throttle, ...
    entry = _stage_entry(plan, parts[1], path)
    websocket = entry["apiId"] in websocket_apis
    throttle: dict[str, Any] = entry.setdefault("throttle", {}) or {}
    entry["throttle"] = throttle
    rest = parts[3:]
    if not rest:
        if op != "remove":
            raise _unsupported(op, path)
        throttle.clear()
        return
    field = rest[-1] if rest[-1] in ("rateLimit", "burstLimit") else None
    target = rest[:-1] if field is not None else rest
    if websocket:
        key = "/".join(target)
    else:
        if len(target) < 2:
            raise PatchError(f"{path}: name the method as <resourcePath>/<METHOD>")
        resource = "/".join(target[:-1])
        key = f"/{resource.lstrip('/')}/{target[-1]}"
    wanted = route_key(key, websocket=websocket)
    existing = next((name for name in throttle if route_key(name, websocket=websocket) == wanted), None)
    if field is None:
        if op != "remove":
            raise _unsupported(op, path)
        if existing is None:
            raise PatchNotFound(f"{path}: no method throttle for {key}")
        del throttle[existing]
        return
    if op not in ("add", "replace"):
        raise _unsupported(op, path)
    name = existing or aws_route_key(wanted, websocket=websocket)
    settings = throttle.setdefault(name, {})
    settings[field] = _number(value, path) if field == "rateLimit" else _int(value, path)


def apply_plan_patch(
    plan: Mapping[str, Any], raw_ops: Any, websocket_apis: Collection[str] = ()
) -> dict[str, Any]:
    """A copy of ``plan`` (AWS shape, :func:`server.admin.shapes.plan_to_aws_dict`) with the
    operations applied in order. Raises PatchError, PatchConflict or PatchNotFound."""
    result = copy.deepcopy(dict(plan))
    result.setdefault("apiStages", [])
    for op, path, value in _ops(raw_ops):
        if path in ("/name", "/description") and op in ("add", "replace"):
            text = "" if value is None and path == "/description" else _text(value, path)
            if path == "/name" and not text:
                raise PatchError("/name: a non-empty string")
            result[path[1:]] = text
        elif path in ("/throttle", "/quota") and op == "remove":
            result[path[1:]] = None
        elif path in ("/throttle/rateLimit", "/throttle/burstLimit") and op in ("add", "replace"):
            throttle = result.get("throttle") or {}
            field = path.rsplit("/", 1)[1]
            throttle[field] = _number(value, path) if field == "rateLimit" else _int(value, path)
            result["throttle"] = throttle
        elif path in ("/quota/limit", "/quota/offset", "/quota/period") and op in ("add", "replace"):
            quota = result.get("quota") or {"offset": 0, "period": "DAY"}
            field = path.rsplit("/", 1)[1]
            quota[field] = _text(value, path).strip().upper() if field == "period" else _int(value, path)
            result["quota"] = quota
        elif path == "/apiStages":
            _stages_op(result, op, path, value)
        elif path.startswith("/apiStages/") and _pointer(path)[2:3] == ["throttle"]:
            _method_throttle_op(result, op, path, value, websocket_apis)
        else:
            raise _unsupported(op, path)
    return result

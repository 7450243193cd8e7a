"""Which admin operation a request names (AWS API Gateway control-plane paths, boto3 names).

Every path lives under :data:`PREFIX`; boto3 keeps the path of ``endpoint_url``, so a client made
with ``endpoint_url="http://host:port/@admin"`` sends ``/@admin/apikeys`` and so on.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

__all__ = ["PREFIX", "Operation", "is_admin_path", "match", "parse_query"]

PREFIX = "/@admin"
_ENCODED_PREFIX = "/%40admin"


@dataclass(frozen=True, slots=True)
class Operation:
    """``name``: the boto3 operation (``GetApiKeys``...; ``RotateApiKey`` and ``PutUsagePlan``
    are Portway's); ``params``: the path parameters, decoded."""

    name: str
    params: Mapping[str, str] = field(default_factory=dict)


def is_admin_path(raw_path: str) -> bool:
    """``raw_path`` (no query) is ``/@admin`` or below it (``%40`` accepted for ``@``)."""
    for prefix in (PREFIX, _ENCODED_PREFIX):
        if raw_path[: len(prefix)].lower() == prefix and raw_path[len(prefix) : len(prefix) + 1] in ("", "/"):
            return True
    return False


def parse_query(query: str) -> dict[str, str]:
    """The query string as a dict (the last of repeated names wins)."""
    return dict(parse_qsl(query, keep_blank_values=True))


def _segments(raw_path: str) -> list[str] | None:
    if not is_admin_path(raw_path):
        return None
    rest = raw_path.split("/", 2)[2] if raw_path.count("/") >= 2 else ""
    return [unquote(part) for part in rest.split("/") if part != ""]


_KEY_OPS = {"GET": "GetApiKey", "PATCH": "UpdateApiKey", "DELETE": "DeleteApiKey"}
_PLAN_OPS = {
    "GET": "GetUsagePlan",
    "PATCH": "UpdateUsagePlan",
    "DELETE": "DeleteUsagePlan",
    "PUT": "PutUsagePlan",
}
_PLAN_KEY_OPS = {"GET": "GetUsagePlanKey", "DELETE": "DeleteUsagePlanKey"}


def match(method: str, raw_path: str, query: Mapping[str, str]) -> Operation | None:
    """The operation for ``method`` on ``raw_path`` (percent-encoded, no query), or None."""
    parts = _segments(raw_path)
    if parts is None:
        return None
    method = method.upper()
    name: str | None = None
    params: dict[str, str] = {}
    if parts[:1] == ["apikeys"]:
        if len(parts) == 1:
            if method == "GET":
                name = "GetApiKeys"
            elif method == "POST":
                name = "ImportApiKeys" if query.get("mode") == "import" else "CreateApiKey"
        elif len(parts) == 2:
            name = _KEY_OPS.get(method)
            params["apiKey"] = parts[1]
        elif len(parts) == 3 and parts[2] == "rotate" and method == "POST":
            name = "RotateApiKey"
            params["apiKey"] = parts[1]
    elif parts[:1] == ["usageplans"]:
        if len(parts) == 1:
            name = {"GET": "GetUsagePlans", "POST": "CreateUsagePlan"}.get(method)
        else:
            params["usagePlanId"] = parts[1]
            if len(parts) == 2:
                name = _PLAN_OPS.get(method)
            elif len(parts) == 3 and parts[2] == "keys":
                name = {"GET": "GetUsagePlanKeys", "POST": "CreateUsagePlanKey"}.get(method)
            elif len(parts) == 3 and parts[2] == "usage" and method == "GET":
                name = "GetUsage"
            elif len(parts) == 4 and parts[2] == "keys":
                name = _PLAN_KEY_OPS.get(method)
                params["keyId"] = parts[3]
    elif parts[:1] == ["restapis"] and parts[2:3] == ["stages"] and parts[4:] == ["cache", "data"]:
        name = "FlushStageCache" if method == "DELETE" and len(parts) == 6 else None
        params = {"restApiId": parts[1], "stageName": parts[3]}
    return None if name is None else Operation(name, params)

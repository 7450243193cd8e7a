"""Verified JWT claims as AWS hands them to integrations (aws-contract.md §5.3, §5.4); pure.

* HTTP API (``jwt`` authorizer): every value a string: numbers and booleans stringified, arrays
  as ``"[a b c]"`` (space-separated in brackets), objects as JSON text, null claims left out.
  Payload 2.0 events carry ``{"jwt": {"claims": ..., "scopes": ...}}``; payload 1.0 events
  ``{"claims": ..., "scopes": ...}``. ``scopes`` is the token's scope list, or null when the route
  has no scopes.
* REST Cognito: ``{"claims": ...}``, every value a string, ``exp``/``iat`` reformatted as
  ``"Mon Apr 14 12:33:31 UTC 2025"`` (recorded). Arrays (``cognito:groups``) are comma-joined:
  one group reads ``"admin"`` as recorded; the several-groups form is unverified.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["cognito_claims", "http_api_authorizer", "http_api_claims"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1744630411.0 -> "1744630411", as Go prints a JSON integer
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _http_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + " ".join(_http_value(item) for item in value) + "]"
    return _scalar(value)


def http_api_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    return {name: _http_value(value) for name, value in claims.items() if value is not None}


def http_api_authorizer(
    claims: Mapping[str, str], scopes: list[str] | None, payload_format: str
) -> dict[str, Any]:
    """``requestContext.authorizer`` of an HTTP API route with a JWT authorizer, from claims
    already shaped by :func:`http_api_claims` (copied: each event gets its own)."""
    body = {"claims": dict(claims), "scopes": scopes}
    return {"jwt": body} if payload_format == "2.0" else body


def _cognito_time(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _scalar(value)
    t = time.gmtime(int(value))
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC {t.tm_year}"
    )


def cognito_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    shaped: dict[str, str] = {}
    for name, value in claims.items():
        if value is None:
            continue
        if name in ("exp", "iat"):
            shaped[name] = _cognito_time(value)
        elif isinstance(value, list):
            shaped[name] = ",".join(_scalar(item) for item in value)
        else:
            shaped[name] = _scalar(value)
    return shaped

"""The ``$context`` values of one answered REST/HTTP request, for an access log format
(:mod:`server.access_format`). Pure: the time comes in as ``now``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from server.messages import HttpResponse

if TYPE_CHECKING:
    from server.pipeline import RequestContext

__all__ = ["clf_time", "request_values", "websocket_values"]


def clf_time(now: float) -> str:
    """AWS's ``$context.requestTime``: ``04/Dec/2026:18:00:00 +0000`` (CLF)."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))


def request_values(ctx: RequestContext, response: HttpResponse, latency_ms: float) -> dict[str, str]:
    req = ctx.request
    values = {
        "requestId": ctx.request_id,
        "extendedRequestId": ctx.extended_request_id,
        "httpMethod": req.method,
        "protocol": req.protocol,
        "domainName": req.host.partition(":")[0],
        "identity.sourceIp": req.source_ip,
        "identity.userAgent": req.header("user-agent") or "",
        "identity.apiKey": req.header("x-api-key") or "",
        "requestTime": clf_time(ctx.now_ms / 1000),
        "requestTimeEpoch": str(ctx.now_ms),
        "status": str(response.status),
        "responseLength": str(len(response.body)),
        "responseLatency": str(int(latency_ms)),
        "path": req.raw_path,
    }
    error_type = response.header("x-amzn-ErrorType")
    if error_type:
        values["error.responseType"] = error_type.partition(":")[0]
    if ctx.dispatch is not None:
        values["apiId"] = ctx.dispatch.api.id
        values["stage"] = ctx.dispatch.stage.name
    info = ctx.info
    if info is not None:
        values["resourcePath"] = info.resource
        values["routeKey"] = info.route_key
        values["path"] = info.stage_prefix + info.path
    return values


def websocket_values(event: dict[str, Any], status: int, latency_ms: float) -> dict[str, str]:
    """A WebSocket event's values: its ``requestContext`` (AWS's names: ``connectionId``,
    ``eventType``, ``routeKey``, ``identity.sourceIp``...) plus the route's answer."""
    values: dict[str, str] = {"status": str(status), "responseLatency": str(int(latency_ms))}
    for key, value in (event.get("requestContext") or {}).items():
        if isinstance(value, str | int) and not isinstance(value, bool):
            values[key] = str(value)
        elif key == "identity" and isinstance(value, dict):
            values.update((f"identity.{k}", str(v)) for k, v in value.items() if isinstance(v, str))
    return values

"""WebSocket route handlers for the tests. In-process, so tests can read what they recorded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

EVENTS: list[dict[str, Any]] = []
DISCONNECTED: asyncio.Queue[dict[str, Any]] | None = None


def _disconnect_queue() -> asyncio.Queue[dict[str, Any]]:
    global DISCONNECTED
    if DISCONNECTED is None:
        DISCONNECTED = asyncio.Queue()
    return DISCONNECTED


async def connect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    query = event.get("queryStringParameters") or {}
    if "deny" in query:
        return {"statusCode": int(query["deny"]), "body": "denied"}
    if "boom" in query:
        raise RuntimeError("connect failed")
    headers = {}
    offered = event["headers"].get("Sec-WebSocket-Protocol")
    if offered:
        headers["Sec-WebSocket-Protocol"] = offered.split(",")[-1].strip()
    return {"statusCode": 200, "headers": headers}


async def disconnect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    await _disconnect_queue().put(event)
    return {"statusCode": 200}


async def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    body = json.loads(event["body"])
    return {
        "statusCode": 200,
        "body": json.dumps({"echo": body, "route": event["requestContext"]["routeKey"]}),
    }


async def default(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    return {"statusCode": 200, "body": "default:" + event["body"]}


async def fail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise ValueError("handler failed")


async def silent(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    return {"statusCode": 200, "body": "never sent: no route response"}


async def whoami(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    return {
        "statusCode": 200,
        "body": json.dumps({"connectionId": ctx["connectionId"], "domain": ctx["domainName"]}),
    }

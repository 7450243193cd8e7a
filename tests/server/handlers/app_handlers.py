"""Lambda-style handlers used by the end-to-end gateway tests."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return the event it received, plus a few context fields."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(
            {
                "event": event,
                "function_name": context.function_name,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "env": os.environ.get("GREETING"),
            }
        ),
    }


async def async_echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return echo(event, context)


def shaped(event: dict[str, Any], context: Any) -> Any:
    """Return the JSON value given in the request body: lets tests try every proxy-response shape."""
    return json.loads(event["body"])


def boom(event: dict[str, Any], context: Any) -> Any:
    raise RuntimeError("handler failed")


def slow(event: dict[str, Any], context: Any) -> Any:
    time.sleep(float((event.get("queryStringParameters") or {}).get("s", "5")))
    return {"statusCode": 200, "body": "late"}


def crash(event: dict[str, Any], context: Any) -> Any:
    os._exit(3)


def v2_inferred(event: dict[str, Any], context: Any) -> Any:
    return {"routeKey": event["routeKey"], "rawPath": event["rawPath"]}

"""Lambda-style handlers served by both examples/hello/portway.yaml and examples/hello/serverless.yml.

They are plain AWS Lambda handlers: the same file deploys to AWS unchanged. They read the REST
(payload 1.0) and the HTTP API (payload 2.0) event alike.
"""

from __future__ import annotations

import json
import os
from typing import Any


def _json(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """GET /hello?name=Ada -> {"message": "Hello, Ada!", ...}"""
    query = event.get("queryStringParameters") or {}
    name = query.get("name", "world")
    greeting = os.environ.get("GREETING", "Hello")
    return _json(
        200,
        {
            "message": f"{greeting}, {name}!",
            "path": event.get("path") or event.get("rawPath"),
            "function": getattr(context, "function_name", None),
        },
    )


def greet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """POST /greet/{name} with an optional JSON body {"greeting": "Hi"}."""
    name = (event.get("pathParameters") or {}).get("name", "stranger")
    try:
        body = json.loads(event.get("body") or "{}")
    except ValueError:
        return _json(400, {"message": "the body must be JSON"})
    greeting = body.get("greeting") if isinstance(body, dict) else None
    return _json(201, {"message": f"{greeting or os.environ.get('GREETING', 'Hello')}, {name}!"})

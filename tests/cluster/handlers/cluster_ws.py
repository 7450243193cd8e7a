"""WebSocket handlers for the multi-node tests (run in-process inside each gateway node).

Every ``$connect`` and ``$disconnect`` appends one JSON line to the file named by the
``PORTWAY_CLUSTER_EVENTS`` environment variable (set by tests/cluster/conftest.py on every node),
so the test process can see which node ran which event, and when, across processes. One
``os.write`` of a short line on an ``O_APPEND`` descriptor: lines from concurrent nodes never
interleave.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

EVENTS_ENV = "PORTWAY_CLUSTER_EVENTS"


def _record(event: dict[str, Any], **extra: Any) -> None:
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return
    ctx = event["requestContext"]
    line = {
        "route": ctx["routeKey"],
        "id": ctx["connectionId"],
        "pid": os.getpid(),
        "t": time.time(),
        **extra,
    }
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


async def connect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record(event)
    return {"statusCode": 200}


async def disconnect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    _record(event, code=ctx.get("disconnectStatusCode"), reason=ctx.get("disconnectReason"))
    return {"statusCode": 200}


async def whoami(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route response: the connection's own id and the pid of the node that holds it."""
    ctx = event["requestContext"]
    return {"statusCode": 200, "body": json.dumps({"connectionId": ctx["connectionId"], "pid": os.getpid()})}

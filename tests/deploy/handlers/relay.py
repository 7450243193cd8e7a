"""WebSocket handlers for the ``portway cluster`` test: each message is handled on the node that
holds its socket, and ``relay``/``shout`` call the ``@connections`` API through the endpoint the
event names (``domainName`` = the load balancer, as a Lambda would), so the call may land on any
node and must reach a socket held by another one."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any


def _endpoint(event: dict[str, Any]) -> str:
    ctx = event["requestContext"]
    return f"http://{ctx['domainName']}/{ctx['stage']}"


def _post(url: str, data: bytes) -> int:
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def whoami(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    return {"statusCode": 200, "body": json.dumps({"connectionId": ctx["connectionId"], "pid": os.getpid()})}


def relay(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"action": "relay", "to": ID, "text": T}: PostToConnection(ID, T); answers the status."""
    body = json.loads(event["body"])
    status = _post(f"{_endpoint(event)}/@connections/{body['to']}", body["text"].encode())
    return {"statusCode": 200, "body": json.dumps({"relayed": status})}


def shout(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"action": "shout", "text": T}: T to every connection of the stage (Portway's @broadcast)."""
    body = json.loads(event["body"])
    status = _post(f"{_endpoint(event)}/@broadcast", body["text"].encode())
    return {"statusCode": 200, "body": json.dumps({"shouted": status})}

"""The Lambda handler behind the WebSocket benchmark's ``$default`` route (``bench/servers/portway_ws.py``).

An ``async def`` echo: the message body goes back unchanged as the route response, the same work
the raw aiohttp echo server (``bench/servers/ws_raw.py``) does. Everything Portway adds on top
(route selection, the MESSAGE event, ids, the invoker, the proxy-result contract) is what the
benchmark ratio measures.
"""

from __future__ import annotations

from typing import Any


async def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": event["body"]}

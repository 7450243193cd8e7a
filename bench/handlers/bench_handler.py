"""The trivial Lambda handler behind Portway's ``/dev/py`` and ``/dev/pyproc`` benchmark routes.

It returns the same small JSON document as ``bench/servers/minimal_server.py`` does, wrapped in a
Lambda proxy response.
"""

from __future__ import annotations

import json
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    payload = {"message": "hello from the handler", "ok": True, "n": 42}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }

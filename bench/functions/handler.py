"""The benchmark's function: a small JSON body, as a typical API handler returns."""

import json


def hello(event, context):
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"ok": True, "message": "hello", "path": event.get("rawPath")}),
    }

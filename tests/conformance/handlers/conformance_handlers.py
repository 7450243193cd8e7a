"""The Lambda functions the recorded AWS cases used, written here from what they do.

* ``echo_event``: returns the event as the JSON body (LocalStack's ``lambda_aws_proxy`` handler does
  the same), so a case can compare the whole event AWS built with the one Portway builds.
* ``response_from_body``: returns the JSON value sent as the request body, so a case can try any
  proxy-response shape (LocalStack's ``LAMBDA_RESPONSE_FROM_BODY``).
"""

from __future__ import annotations

import json
from typing import Any


def echo_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps(event)}


def response_from_body(event: dict[str, Any], context: Any) -> Any:
    return json.loads(event["body"])


def connect_echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``$connect``: refuse the handshake with the event as the body, so the test can read the
    CONNECT event AWS would have built (a refused handshake's status and body reach the client)."""
    return {"statusCode": 400, "body": json.dumps(event)}


def message_echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A WebSocket route with a route response: the MESSAGE event goes back to the client."""
    return {"statusCode": 200, "body": json.dumps(event)}

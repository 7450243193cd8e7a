"""Lambda authorizers and routes for tests/auth. The identity (a token) says what to answer:

``allow`` (any method), ``exact`` (only the method ARN it was asked about), ``deny`` (explicit
deny), ``none`` (a policy matching nothing: implicit deny), ``unauthorized`` (raises
``Exception("Unauthorized")``), ``crash`` (raises anything else), ``slow`` (sleeps past the
timeout), ``malformed`` (no policy), ``badcontext`` (an object in context), ``key-VALUE`` (allow,
with ``usageIdentifierKey: VALUE``). Every invocation appends its event as a JSON line to the file
named by ``AUTH_LOG`` (tests count invocations with it).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

CONTEXT = {"text": "hello", "number": 7, "flag": True, "ratio": 1.5}


def _log(event: dict[str, Any]) -> None:
    path = os.environ.get("AUTH_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(event) + "\n")


def _policy(effect: str, resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
    }


def _token(event: dict[str, Any]) -> str:
    if event.get("type") == "TOKEN":
        return str(event["authorizationToken"])
    if event.get("version") == "2.0":
        return str(event["identitySource"][0])
    if event.get("version") == "1.0":
        return str(event["identitySource"]).split(",")[0]
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return headers.get("authorization") or (event.get("queryStringParameters") or {}).get("token", "")


def _answer(token: str, arn: str) -> dict[str, Any]:
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token == "crash":
        raise ValueError("boom")
    if token == "slow":
        time.sleep(3)
    if token == "malformed":
        return {"principalId": "user"}
    if token == "badcontext":
        return {"principalId": "user", "policyDocument": _policy("Allow", "*"), "context": {"o": {}}}
    if token == "deny":
        return {"principalId": "user", "policyDocument": _policy("Deny", arn.rsplit("/", 2)[0] + "/*")}
    if token == "none":
        return {"principalId": "user", "policyDocument": _policy("Allow", "arn:aws:execute-api:*:*:other/*")}
    resource = arn if token == "exact" else "arn:aws:execute-api:*:*:*"
    answer: dict[str, Any] = {"principalId": "user-" + token, "policyDocument": _policy("Allow", resource)}
    answer["context"] = CONTEXT
    if token.startswith("key-"):
        answer["usageIdentifierKey"] = token[4:]
    return answer


def policy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """IAM-policy authorizer (REST TOKEN/REQUEST, HTTP API 1.0/2.0, WebSocket $connect)."""
    _log(event)
    return _answer(_token(event), event.get("methodArn") or event.get("routeArn") or "")


def simple(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """HTTP API 2.0 simple-response authorizer: ``allow`` / ``deny`` (isAuthorized false)."""
    _log(event)
    token = _token(event)
    if token == "malformed":
        return {"isAuthorized": "yes"}
    return {"isAuthorized": token == "allow", "context": {"user": "u1", "roles": ["a", "b"], "n": 1}}


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A route that returns its event (REST/HTTP) for the test to look at."""
    return {"statusCode": 200, "body": json.dumps(event)}


def ws_echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A WebSocket route that returns its event (route response) and logs it."""
    path = os.environ.get("WS_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(event) + "\n")
    return {"statusCode": 200, "body": json.dumps(event)}

"""The Lambda authorizer behind ``/dev/authed/{proxy+}`` in ``bench/bench_auth.py``: a TOKEN
authorizer allowing every method of the API for the token ``Bearer bench``. With the cache on,
the benchmark invokes it once; every later request is answered from the store's cached result,
evaluated against its own method ARN (what the benchmark measures)."""

from __future__ import annotations

from typing import Any


def authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["authorizationToken"] != "Bearer bench":
        raise Exception("Unauthorized")
    api = event["methodArn"].split("/", 1)[0]
    return {
        "principalId": "bench-user",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": api + "/*"}],
        },
        "context": {"tenant": "bench", "tier": 1},
    }

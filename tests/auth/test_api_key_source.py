"""``apiKeySource: AUTHORIZER`` (reference §3.2, §5.1): the Lambda authorizer's
``usageIdentifierKey`` selects the usage-plan key, not the ``x-api-key`` header."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestClient, TestServer
from websockets.exceptions import InvalidStatus

from server.app import create_app
from tests.auth.conftest import InvocationLog, write_config

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
KEY = "abcdefghij0123456789"

CONFIG = f"""
portway: 1
usagePlans:
  basic:
    quota: {{limit: 2, period: DAY}}
    apis: [{{api: pets, stage: dev}}, {{api: chat, stage: dev}}]
apiKeys:
  - {{name: alice, value: {KEY}, plans: [basic]}}
apis:
  - name: pets
    id: petsapi
    codeDir: CODE
    apiKeySource: AUTHORIZER
    defaults: {{isolation: inprocess}}
    authorizers:
      tok: {{type: token, function: authorizers.policy, resultTtlInSeconds: 0}}
    routes:
      GET /keyed: {{python: authorizers.echo, authorizer: tok, apiKeyRequired: true}}
  - name: chat
    id: chatapi
    type: websocket
    codeDir: CODE
    apiKeySource: AUTHORIZER
    defaults: {{isolation: inprocess}}
    authorizers:
      ws: {{type: request, function: authorizers.policy, identitySource: route.request.querystring.token}}
    routes:
      $connect: {{python: authorizers.echo, authorizer: ws, apiKeyRequired: true}}
"""


async def test_rest_usage_identifier_key_selects_the_plan_key(
    aiohttp_client: Client, tmp_path: Path, auth_log: InvocationLog
) -> None:
    client = await aiohttp_client(create_app(write_config(tmp_path, CONFIG)))
    # The header is ignored for such APIs: a valid key in x-api-key alone is not enough.
    async with client.get("/dev/keyed", headers={"Authorization": "allow", "x-api-key": KEY}) as response:
        assert response.status == 403
        assert await response.read() == b'{"message":"Forbidden"}'
    async with client.get("/dev/keyed", headers={"Authorization": "key-nosuchkey0123456789"}) as response:
        assert response.status == 403
    async with client.get("/dev/keyed", headers={"Authorization": f"key-{KEY}"}) as response:
        assert response.status == 200
        identity = json.loads(await response.read())["requestContext"]["identity"]
        assert identity["apiKey"] == KEY
    # The plan's quota (2 a day) counts against that key.
    async with client.get("/dev/keyed", headers={"Authorization": f"key-{KEY}"}) as response:
        assert response.status == 200
    async with client.get("/dev/keyed", headers={"Authorization": f"key-{KEY}"}) as response:
        assert (response.status, await response.read()) == (429, b'{"message":"Limit Exceeded"}')


async def test_websocket_connect_takes_the_authorizer_key(tmp_path: Path, auth_log: InvocationLog) -> None:
    server = TestServer(create_app(write_config(tmp_path, CONFIG)), port=0)
    await server.start_server()
    try:
        url = f"ws://127.0.0.1:{server.port}/dev"
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(f"{url}?token=allow", additional_headers={"x-api-key": KEY}):
                pass
        assert info.value.response.status_code == 403
        async with websockets.connect(f"{url}?token=key-{KEY}"):
            pass
    finally:
        await server.close()

"""WebSocket ``$connect`` REQUEST authorizer (reference §1.4, §1.6): a real ``websockets`` client
with and without valid credentials; the authorizer's context in every later event."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestServer
from websockets.exceptions import InvalidStatus

from connections.registry import conn_key
from server.app import STORE, create_app
from tests.auth.conftest import InvocationLog, write_config

CONFIG = """
portway: 1
accountId: "111122223333"
apis:
  - name: chat
    id: chatapi
    type: websocket
    codeDir: CODE
    defaults: {isolation: inprocess, timeout: 5000}
    stages: {dev: {variables: {room: lobby}}}
    authorizers:
      ws:
        type: request
        function: authorizers.policy
        identitySource: [route.request.querystring.token, route.request.header.X-Tenant]
    routes:
      $connect: {python: authorizers.ws_echo, authorizer: ws}
      $disconnect: authorizers.ws_echo
      whoami: {python: authorizers.ws_echo, routeResponse: true}
"""


@pytest.fixture
async def gateway(
    tmp_path: Path, auth_log: InvocationLog, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TestServer]:
    monkeypatch.setenv("WS_LOG", str(tmp_path / "ws-events.jsonl"))
    test_server = TestServer(create_app(write_config(tmp_path, CONFIG)), port=0)
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
def server(gateway: TestServer) -> str:
    return f"ws://127.0.0.1:{gateway.port}/dev"


def ws_events(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "ws-events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def wait_for(tmp_path: Path, event_type: str, within: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for event in ws_events(tmp_path):
            if event["requestContext"]["eventType"] == event_type:
                return event
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {event_type} event within {within} s")


async def test_valid_credentials_context_in_every_event(
    server: str, tmp_path: Path, auth_log: InvocationLog
) -> None:
    async with websockets.connect(f"{server}?token=allow", additional_headers={"X-Tenant": "t1"}) as ws:
        await ws.send(json.dumps({"action": "whoami"}))
        async with asyncio.timeout(5):
            message = json.loads(await ws.recv())
    expected = {
        "text": "hello",
        "number": "7",
        "flag": "true",
        "ratio": "1.5",
        "principalId": "user-allow",
    }
    assert message["requestContext"]["eventType"] == "MESSAGE"
    authorizer = message["requestContext"]["authorizer"]
    assert {k: authorizer[k] for k in expected} == expected
    connect = await wait_for(tmp_path, "CONNECT")
    assert {k: connect["requestContext"]["authorizer"][k] for k in expected} == expected
    disconnect = await wait_for(tmp_path, "DISCONNECT")
    assert {k: disconnect["requestContext"]["authorizer"][k] for k in expected} == expected
    (seen,) = auth_log.events()
    assert seen["type"] == "REQUEST"
    assert seen["methodArn"] == "arn:aws:execute-api:us-east-1:111122223333:chatapi/dev/$connect"
    assert seen["queryStringParameters"] == {"token": "allow"}
    assert seen["stageVariables"] == {"room": "lobby"}
    context = seen["requestContext"]
    assert context["routeKey"] == "$connect" and context["eventType"] == "CONNECT"
    # The connection id the authorizer saw is the connection's.
    assert context["connectionId"] == message["requestContext"]["connectionId"]


@pytest.mark.parametrize(
    ("query", "headers", "status", "invoked"),
    [
        ("", {"X-Tenant": "t1"}, 401, 0),  # missing identity source: not invoked
        ("?token=allow", {}, 401, 0),
        ("?token=unauthorized", {"X-Tenant": "t1"}, 401, 1),
        ("?token=deny", {"X-Tenant": "t1"}, 403, 1),
        ("?token=none", {"X-Tenant": "t1"}, 403, 1),
        ("?token=crash", {"X-Tenant": "t1"}, 500, 1),
        ("?token=malformed", {"X-Tenant": "t1"}, 500, 1),
    ],
)
async def test_refused_handshakes(
    server: str,
    tmp_path: Path,
    auth_log: InvocationLog,
    query: str,
    headers: dict[str, str],
    status: int,
    invoked: int,
) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(server + query, additional_headers=headers):
            pass
    assert info.value.response.status_code == status
    assert len(auth_log) == invoked
    assert ws_events(tmp_path) == []  # $connect never ran


async def test_cached_per_identity(server: str, auth_log: InvocationLog) -> None:
    for _ in range(2):
        async with websockets.connect(f"{server}?token=allow", additional_headers={"X-Tenant": "t1"}):
            pass
    assert len(auth_log) == 1


async def test_context_is_in_the_connection_record(gateway: TestServer, server: str) -> None:
    """Other nodes build this connection's events from its store record (a dead node's
    $disconnect): the authorizer's context is in it."""
    async with websockets.connect(f"{server}?token=allow", additional_headers={"X-Tenant": "t1"}) as ws:
        await ws.send(json.dumps({"action": "whoami"}))
        async with asyncio.timeout(5):
            connection_id = json.loads(await ws.recv())["requestContext"]["connectionId"]
        record = await gateway.app[STORE].hgetall(conn_key(connection_id))
        stored = json.loads(record["authorizer"])
        assert stored["principalId"] == "user-allow" and stored["number"] == "7"

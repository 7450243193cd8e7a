"""The @connections API with boto3's and aiobotocore's apigatewaymanagementapi (aws-contract.md §1.7)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import aiohttp
import boto3
import pytest
import websockets
from aiobotocore.session import get_session
from websockets.exceptions import ConnectionClosed

from server.config.model import ManagementSettings, WebSocketSettings
from tests.connections.conftest import GatewayFactory, chat_api, ws_url
from tests.connections.handlers import ws_handlers

CREDS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret", "region_name": "us-east-1"}


def mgmt(port: int) -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=f"http://127.0.0.1:{port}/dev", **CREDS)


async def whoami(ws: Any) -> str:
    await ws.send('{"action":"whoami"}')
    return str(json.loads(await ws.recv())["connectionId"])


async def test_post_get_delete_with_boto3(ws_gateway: GatewayFactory) -> None:
    if ws_handlers.DISCONNECTED is None:
        ws_handlers.DISCONNECTED = asyncio.Queue()
    server = await ws_gateway(chat_api())
    client = mgmt(server.port)
    async with websockets.connect(ws_url(server), user_agent_header="test-agent/1") as ws:
        connection_id = await whoami(ws)
        assert "=" in connection_id  # boto3 sends it as %3D; the gateway decodes it
        result = await asyncio.to_thread(
            client.post_to_connection, ConnectionId=connection_id, Data=b"pushed"
        )
        assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert await ws.recv() == "pushed"

        info = await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
        assert isinstance(info["ConnectedAt"], datetime) and isinstance(info["LastActiveAt"], datetime)
        assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "test-agent/1"}

        deleted = await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                await ws.recv()
    assert ws_handlers.DISCONNECTED is not None
    async with asyncio.timeout(5):
        event = await ws_handlers.DISCONNECTED.get()
    assert event["requestContext"]["connectionId"] == connection_id

    for call in (client.post_to_connection, client.get_connection, client.delete_connection):
        kwargs: dict[str, Any] = {"ConnectionId": connection_id}
        if call == client.post_to_connection:
            kwargs["Data"] = b"x"
        with pytest.raises(client.exceptions.GoneException):
            await asyncio.to_thread(call, **kwargs)


async def test_unknown_connection_is_gone_with_error_type(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with aiohttp.ClientSession() as http:
        for method in ("POST", "GET", "DELETE"):
            async with http.request(
                method, f"http://127.0.0.1:{server.port}/dev/%40connections/nope%3D"
            ) as r:
                assert r.status == 410
                assert r.headers["x-amzn-ErrorType"] == "GoneException"
                assert "x-amzn-RequestId" in r.headers


async def test_payload_too_large(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(WebSocketSettings(max_message_bytes=100)))
    client = mgmt(server.port)
    async with websockets.connect(ws_url(server)) as ws:
        connection_id = await whoami(ws)
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            await asyncio.to_thread(client.post_to_connection, ConnectionId=connection_id, Data=b"x" * 101)
        await asyncio.to_thread(client.post_to_connection, ConnectionId=connection_id, Data=b"x" * 100)
        assert await ws.recv() == "x" * 100


async def test_full_send_buffer_is_429_limit_exceeded(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(WebSocketSettings(send_buffer_bytes=64 * 1024)))
    url = f"http://127.0.0.1:{server.port}/dev/@connections/"
    # A raw client that never reads: the gateway's outgoing buffer fills up.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /dev HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await reader.readuntil(b"\r\n\r\n")
    frame = b'{"action":"whoami"}'
    writer.write(bytes([0x81, 0x80 | len(frame)]) + b"\x00\x00\x00\x00" + frame)
    header = await reader.readexactly(2)
    payload = await reader.readexactly(header[1] & 0x7F)
    connection_id = json.loads(payload)["connectionId"]
    statuses: list[int] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(2000):  # bounded: the kernel buffers a few MB before the gateway's buffer grows
            async with http.post(url + connection_id, data=b"y" * 60_000) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert r.headers["x-amzn-ErrorType"] == "LimitExceededException"
                    break
    writer.close()
    assert statuses[-1] == 429 and statuses[0] == 200


async def test_aiobotocore_client(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    session = get_session()
    async with (
        websockets.connect(ws_url(server)) as ws,
        session.create_client(
            "apigatewaymanagementapi", endpoint_url=f"http://127.0.0.1:{server.port}/dev", **CREDS
        ) as client,
    ):
        connection_id = await whoami(ws)
        await client.post_to_connection(ConnectionId=connection_id, Data=b"from aiobotocore")
        assert await ws.recv() == "from aiobotocore"
        with pytest.raises(client.exceptions.GoneException):
            await client.get_connection(ConnectionId="missing=")


async def test_channels_broadcast_list_and_bulk_disconnect(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    base = f"http://127.0.0.1:{server.port}/dev"
    async with (
        aiohttp.ClientSession() as http,
        websockets.connect(ws_url(server)) as a,
        websockets.connect(ws_url(server)) as b,
        websockets.connect(ws_url(server)) as c,
    ):
        ids = [await whoami(ws) for ws in (a, b, c)]
        for connection_id in ids[:2]:
            async with http.post(f"{base}/@connections/{connection_id}/channels/room1") as r:
                assert r.status == 200
        async with http.post(f"{base}/@channels/room1", data=b"to room1") as r:
            assert await r.json() == {"delivered": 2}
        assert await a.recv() == "to room1" and await b.recv() == "to room1"
        async with http.post(f"{base}/@broadcast", data=b"to all") as r:
            assert await r.json() == {"delivered": 3}
        assert [await ws.recv() for ws in (a, b, c)] == ["to all"] * 3
        async with http.get(f"{base}/@connections", params={"channel": "room1"}) as r:
            assert await r.json() == {"connections": sorted(ids[:2]), "count": 2}
        async with http.get(f"{base}/@connections") as r:
            assert (await r.json())["count"] == 3
        async with http.delete(f"{base}/@connections/{ids[1]}/channels/room1") as r:
            assert r.status == 200
        async with http.delete(f"{base}/@connections", params={"channel": "room1"}) as r:
            assert await r.json() == {"disconnected": 1}
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                await a.recv()
        await b.send('{"action":"whoami"}')  # b left the channel before the bulk disconnect
        assert json.loads(await b.recv())["connectionId"] == ids[1]


async def test_post_during_connect_is_gone(ws_gateway: GatewayFactory) -> None:
    """The connection does not exist until $connect returned (aws-contract.md §1.4)."""
    server = await ws_gateway(chat_api())
    async with websockets.connect(ws_url(server)):
        connect_event = ws_handlers.EVENTS[0]
    # The id seen by $connect is registered only after $connect returned; before the socket opened it
    # was unknown. After close it is gone again.
    connection_id = connect_event["requestContext"]["connectionId"]
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{server.port}/dev/@connections/{connection_id}", data=b"x") as r,
    ):
        assert r.status == 410


async def test_unsupported_operation_is_403_forbidden(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api())
    async with aiohttp.ClientSession() as http:
        for method, path in (("PUT", "/dev/@connections/abc%3D"), ("GET", "/dev/@channels/room")):
            async with http.request(method, f"http://127.0.0.1:{server.port}{path}") as r:
                assert r.status == 403
                assert r.headers["x-amzn-ErrorType"] == "ForbiddenException"


@pytest.mark.parametrize(
    ("remote", "spec", "allowed"),
    [
        ("127.0.0.1", None, True),
        ("127.8.9.10", None, True),
        ("::1", None, True),
        ("::ffff:127.0.0.1", None, True),
        # Loopback only by default (issue 11): behind a reverse proxy every client is private.
        ("10.1.2.3", None, False),
        ("172.20.0.5", None, False),
        ("192.168.1.9", None, False),
        ("::ffff:10.0.0.1", None, False),
        ("fc00::1", None, False),
        ("8.8.8.8", None, False),
        ("2001:db8::1", None, False),
        (None, None, False),
        ("not-an-ip", None, False),
        ("203.0.113.7", "203.0.113.0/24", True),
        ("127.0.0.1", "203.0.113.0/24", False),
    ],
)
def test_management_api_callers(remote: str | None, spec: str | None, allowed: bool) -> None:
    from connections.management_http import caller_allowed

    assert caller_allowed(remote, spec) is allowed


async def test_management_api_refuses_callers_outside_the_allowed_networks(
    ws_gateway: GatewayFactory,
) -> None:
    networks = ManagementSettings(auth="none", allow_networks=("203.0.113.0/24",))
    server = await ws_gateway(chat_api(), management=networks)
    url = f"http://127.0.0.1:{server.port}/dev/@connections"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 403
        assert r.headers["x-amzn-ErrorType"] == "ForbiddenException"


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
async def test_management_calls_relayed_by_a_proxy_are_refused(
    ws_gateway: GatewayFactory, header: str
) -> None:
    # A reverse proxy on the same host makes every client's peer address loopback (issue 11): a
    # relayed request is not a local caller unless it is signed (management.auth: iam).
    server = await ws_gateway(chat_api())
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/dev/@connections") as r:
            assert r.status == 200
        for path in ("/dev/@connections", "/@metrics"):
            async with http.get(f"{base}{path}", headers={header: "203.0.113.9"}) as r:
                assert r.status == 403
        async with http.post(f"{base}/dev/@broadcast", data=b"x", headers={header: "203.0.113.9"}) as r:
            assert r.status == 403 and r.headers["x-amzn-ErrorType"] == "ForbiddenException"

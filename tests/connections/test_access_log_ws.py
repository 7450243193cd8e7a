"""A WebSocket API's access log format: one line per event ($connect, messages, $disconnect)
with the event's ``$context`` values (real websockets client)."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace

import websockets
from aiohttp.test_utils import TestServer

from server.access_log import AccessLog
from server.app import create_app
from server.config.model import GatewayConfig
from tests.connections.conftest import chat_api, ws_url
from tests.store.conftest import eventually

FORMAT = (
    '{"requestId":"$context.requestId","connectionId":"$context.connectionId",'
    '"eventType":"$context.eventType","routeKey":"$context.routeKey","status":"$context.status",'
    '"ip":"$context.identity.sourceIp","stage":"$context.stage","apiId":"$context.apiId"}'
)


async def test_each_websocket_event_is_one_formatted_line() -> None:
    stream = io.StringIO()
    api = replace(chat_api(), access_log_format=FORMAT)
    server = TestServer(create_app(GatewayConfig(apis=(api,)), access_log=AccessLog(stream)), port=0)
    await server.start_server()
    try:
        async with websockets.connect(ws_url(server), open_timeout=5) as ws:
            await ws.send('{"action":"whoami"}')
            async with asyncio.timeout(5):
                connection_id = json.loads(await ws.recv())["connectionId"]
        await eventually(lambda: len(stream.getvalue().splitlines()) == 3)
    finally:
        await server.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["eventType"], line["routeKey"]) for line in lines] == [
        ("CONNECT", "$connect"),
        ("MESSAGE", "whoami"),
        ("DISCONNECT", "$disconnect"),
    ]
    for line in lines:
        assert line["connectionId"] == connection_id
        assert line["status"] == "200"
        assert line["ip"] == "127.0.0.1"
        assert (line["stage"], line["apiId"]) == ("dev", "chatapi")
        assert line["requestId"] != "-"

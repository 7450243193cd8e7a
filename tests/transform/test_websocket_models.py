"""WebSocket route models (reference §1.2, §1.3): a message that fails the model its route's model
selection expression picks gets AWS's error frame and never reaches the integration; the
connection stays open. Frame text as documented (DG:websocket-api-request-validation, recorded in
shared/reference/aws-api-gateway.md §1.3):
``{"message" : "Bad request body", "connectionId": "{connectionId}", "messageId": "{messageId}"}``.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from types import MappingProxyType

import websockets

from server.config.model import RequestValidation
from tests.connections.conftest import GatewayFactory, chat_api, ws_url
from tests.connections.handlers import ws_handlers

MODELS = {
    "Join": {"type": "object", "required": ["action", "room"], "properties": {"room": {"type": "string"}}},
    "Any": {"type": "object", "required": ["action"]},
}
FRAME = re.compile(r'^\{"message" : "Bad request body", "connectionId": "([^"]+)", "messageId": "[^"]+"\}$')


async def test_bad_message_gets_the_error_frame(ws_gateway: GatewayFactory) -> None:
    api = chat_api()
    validation = RequestValidation(
        models=MappingProxyType({"join": MODELS["Join"], "$default": MODELS["Any"]}),
        selection_expression="$request.body.kind",
    )
    routes = tuple(
        replace(route, validation=validation) if route.path == "echo" else route for route in api.routes
    )
    server = await ws_gateway(replace(api, routes=routes, models=MappingProxyType(MODELS)))
    async with websockets.connect(ws_url(server)) as ws:
        async with asyncio.timeout(5):
            # `kind: join` selects the Join model: room is required and a string.
            await ws.send(json.dumps({"action": "echo", "kind": "join", "room": 7}))
            frame = await ws.recv()
            assert isinstance(frame, str) and FRAME.match(frame), frame
            await ws.send(json.dumps({"action": "echo", "kind": "join", "room": "a"}))
            assert json.loads(await ws.recv())["echo"]["room"] == "a"
            # Any other kind: the $default model, which this message passes.
            await ws.send(json.dumps({"action": "echo", "kind": "other"}))
            assert json.loads(await ws.recv())["route"] == "echo"
            before = len(ws_handlers.EVENTS)
            await ws.send(json.dumps({"action": "echo", "kind": "join"}))
            assert FRAME.match(str(await ws.recv()))
            # Routes without models are not validated.
            await ws.send("not json at all")
            assert await ws.recv() == "default:not json at all"
        echoes = [e for e in ws_handlers.EVENTS[before:] if e["requestContext"]["routeKey"] == "echo"]
        assert echoes == []  # the refused message never reached the integration

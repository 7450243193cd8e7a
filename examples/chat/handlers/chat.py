"""The chat example's WebSocket handlers: plain AWS Lambda handlers (Python 3.11 + boto3).

Routes (route selection expression ``$request.body.action``)::

    $connect     ws://host:3000/dev?name=Ada      name optional (1..32 characters, else 400)
    join         {"action": "join", "room": "lobby"}
                     -> every member of the room: {"event": "joined", "room": "lobby", "name": "Ada"}
    send         {"action": "send", "room": "lobby", "text": "hi"}
                     -> every member of the room: {"from": "Ada", "room": "lobby", "text": "hi"}
    broadcast    {"action": "broadcast", "text": "hi"}
                     -> every connection of the stage: {"from": "Ada", "broadcast": true, "text": "hi"}
    $default     anything else: the help text comes back (the route has a route response)
    $disconnect  forgets the name

Messages to one connection go through boto3's ``apigatewaymanagementapi`` client
(``PostToConnection``), exactly as on AWS. The endpoint is built from the event:
``{scheme}://{domainName}/{stage}``, where the scheme is ``$PORTWAY_ENDPOINT_SCHEME`` (``https``
by default, as AWS needs; Portway's configs set ``http``).

Rooms use **Portway's channel API**, which AWS does not have (AWS has no broadcast)::

    POST {endpoint}/@connections/{connectionId}/channels/{room}   join a room
    POST {endpoint}/@channels/{room}                              post to every member
    POST {endpoint}/@broadcast                                    post to every connection

Members leave their rooms when they disconnect. On AWS you would keep room members in a DynamoDB
table (written by ``join``, deleted by ``$disconnect``) and call ``post_to_connection`` once per
member; the handlers answer ``{"error": ...}`` saying so when the channel API is missing.

Names: ``$connect`` cannot message its own connection (it does not exist until ``$connect``
returns: 410 GoneException), so the name is kept in a small file per connection in the temporary
folder (``$CHAT_NAMES_DIR``). A connection's messages are always handled on the host that holds
its socket, so this works on one Portway node and on many; on AWS (one ``/tmp`` per Lambda
instance) a name may not be found, and the connection id is shown instead.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

SCHEME = os.environ.get("PORTWAY_ENDPOINT_SCHEME", "https")
NAMES_DIR = Path(os.environ.get("CHAT_NAMES_DIR") or Path(tempfile.gettempdir()) / "portway-chat-names")
ROOM = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_NAME = 32
MAX_TEXT = 4096
HELP = {
    "message": "unknown action",
    "actions": {
        "join": {"action": "join", "room": "lobby"},
        "send": {"action": "send", "room": "lobby", "text": "hello"},
        "broadcast": {"action": "broadcast", "text": "hello, everyone"},
    },
}
NO_CHANNELS = (
    "rooms use Portway's channel API (@connections/{id}/channels, @channels, @broadcast), which "
    "AWS does not have: on AWS, keep room members in DynamoDB and post to each of them"
)

_clients: dict[str, Any] = {}  # one boto3 client per endpoint, kept while the function is warm


def _endpoint(event: dict[str, Any]) -> str:
    context = event["requestContext"]
    return f"{SCHEME}://{context['domainName']}/{context['stage']}"


def _management(event: dict[str, Any]) -> Any:
    endpoint = _endpoint(event)
    client = _clients.get(endpoint)
    if client is None:
        import boto3  # imported on first use: the routes that do not post start faster

        options: dict[str, str] = {}
        if SCHEME == "http" and not os.environ.get("AWS_ACCESS_KEY_ID"):
            # A local gateway does not check signatures, but botocore signs every request and
            # needs credentials to do so (on AWS, Lambda provides the function's own).
            options = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
        client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, **options)
        _clients[endpoint] = client
    return client


def _post(event: dict[str, Any], payload: dict[str, Any]) -> None:
    """PostToConnection to the caller."""
    connection_id = event["requestContext"]["connectionId"]
    _management(event).post_to_connection(ConnectionId=connection_id, Data=json.dumps(payload).encode())


def _channel_api(event: dict[str, Any], path: str, payload: dict[str, Any] | None = None) -> bool:
    """POST to Portway's channel API; False when it is not there (AWS)."""
    data = json.dumps(payload).encode() if payload is not None else b""
    request = urllib.request.Request(f"{_endpoint(event)}/{path}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    except urllib.error.HTTPError as error:
        print(f"{path}: HTTP {error.code}")
        return False
    return True


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _name_file(connection_id: str) -> Path:
    return NAMES_DIR / connection_id.replace("/", "_")


def _name(connection_id: str) -> str:
    try:
        return _name_file(connection_id).read_text(encoding="utf-8") or connection_id
    except OSError:
        return connection_id


def _message(event: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _ok() -> dict[str, Any]:
    return {"statusCode": 200}


def connect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    name = ((event.get("queryStringParameters") or {}).get("name") or "").strip()
    if len(name) > MAX_NAME or not name.isprintable():
        # A non-2xx statusCode from $connect fails the handshake with that status.
        return {"statusCode": 400, "body": f"name: at most {MAX_NAME} printable characters"}
    if name:
        try:
            NAMES_DIR.mkdir(parents=True, exist_ok=True)
            _name_file(event["requestContext"]["connectionId"]).write_text(name, encoding="utf-8")
        except OSError as error:  # the chat still works, showing the connection id
            print(f"cannot keep the name: {error}")
    return _ok()


def disconnect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _name_file(event["requestContext"]["connectionId"]).unlink(missing_ok=True)
    return _ok()


def join(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    room = str(_message(event).get("room", ""))
    if not ROOM.match(room):
        _post(event, {"error": "join needs a room: 1..64 letters, digits, '.', '_' or '-'"})
    elif not _channel_api(event, f"@connections/{_quote(connection_id)}/channels/{_quote(room)}"):
        _post(event, {"error": NO_CHANNELS})
    else:
        notice = {"event": "joined", "room": room, "name": _name(connection_id)}
        _channel_api(event, f"@channels/{_quote(room)}", notice)
    return _ok()


def send(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    message = _message(event)
    room, text = str(message.get("room", "")), message.get("text")
    if not ROOM.match(room) or not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
        _post(event, {"error": f"send needs a room and a text (1..{MAX_TEXT} characters)"})
    else:
        payload = {"from": _name(connection_id), "room": room, "text": text}
        if not _channel_api(event, f"@channels/{_quote(room)}", payload):
            _post(event, {"error": NO_CHANNELS})
    return _ok()


def broadcast(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    text = _message(event).get("text")
    if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
        _post(event, {"error": f"broadcast needs a text (1..{MAX_TEXT} characters)"})
    else:
        payload = {"from": _name(connection_id), "broadcast": True, "text": text}
        if not _channel_api(event, "@broadcast", payload):
            _post(event, {"error": NO_CHANNELS})
    return _ok()


def default(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Two-way: the body goes back to the client (the route has a route response)."""
    return {"statusCode": 200, "body": json.dumps(HELP)}

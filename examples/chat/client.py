"""A few-line chat client: join a room, say hello, print everything that arrives (Ctrl-C quits).

python examples/chat/client.py ws://127.0.0.1:3000/dev [name] [room]
"""

import asyncio
import contextlib
import json
import sys
from urllib.parse import quote

import websockets


async def chat(url: str, name: str = "guest", room: str = "lobby") -> None:
    async with websockets.connect(f"{url}?name={quote(name)}") as ws:
        await ws.send(json.dumps({"action": "join", "room": room}))
        async for message in ws:
            print(message, flush=True)
            if json.loads(message) == {"event": "joined", "room": room, "name": name}:  # we are in
                await ws.send(json.dumps({"action": "send", "room": room, "text": f"hello from {name}"}))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C
        asyncio.run(chat(*sys.argv[1:4]))

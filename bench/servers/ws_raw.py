"""Minimal aiohttp + uvloop WebSocket server: the baseline for Portway's WebSocket figures.

    python bench/servers/ws_raw.py --port 8090

* ``GET /ws``: WebSocket echo (every text message is sent back as is), aiohttp's defaults;
* ``POST /broadcast``: the body is sent as one text frame to every open socket, in a plain
  ``for ws in sockets: await ws.send_str(text)`` loop (the "raw aiohttp send loop" baseline of
  figure (d)); answers ``{"delivered": n}`` once the loop is done;
* ``POST /send/{i}``: the body to socket ``i`` (ids are integers handed out in accept order): the
  baseline of figure (c), the counterpart of Portway's ``POST /{stage}/@connections/{id}``;
  410 when ``i`` is not open;
* ``GET /conns``: ``{"connections": [ids], "count": n}`` (like ``GET /{stage}/@connections``);
* ``GET /``: ``ok`` (readiness).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal

import uvloop
from aiohttp import WSMsgType, web

SOCKETS = web.AppKey("sockets", dict)  # int id -> web.WebSocketResponse
IDS = web.AppKey("ids", itertools.count)


async def ws_echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    conn_id = next(request.app[IDS])
    sockets[conn_id] = ws
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
    finally:
        sockets.pop(conn_id, None)
    return ws


async def broadcast(request: web.Request) -> web.Response:
    text = (await request.read()).decode()
    delivered = 0
    for ws in list(request.app[SOCKETS].values()):
        if not ws.closed:
            await ws.send_str(text)
            delivered += 1
    return web.json_response({"delivered": delivered})


async def send(request: web.Request) -> web.Response:
    data = await request.read()
    try:
        ws = request.app[SOCKETS].get(int(request.match_info["id"]))
    except ValueError:
        ws = None
    if ws is None or ws.closed:
        return web.Response(status=410)
    await ws.send_str(data.decode())
    return web.Response(status=200)


async def conns(request: web.Request) -> web.Response:
    ids = sorted(request.app[SOCKETS])
    return web.Response(
        text=json.dumps({"connections": ids, "count": len(ids)}), content_type="application/json"
    )


async def root(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def serve(host: str, port: int) -> None:
    app = web.Application()
    app[SOCKETS] = {}
    app[IDS] = itertools.count()
    app.router.add_get("/ws", ws_echo)
    app.router.add_post("/broadcast", broadcast)
    app.router.add_post("/send/{id}", send)
    app.router.add_get("/conns", conns)
    app.router.add_get("/", root)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    print(f"raw WebSocket server listening on ws://{host}:{port}/ws", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

"""Minimal aiohttp + uvloop server: the baseline for a Portway Python-handler route.

    python bench/servers/minimal_server.py --port 8082

Its one handler does what the trivial Lambda handler in ``bench/handlers/bench_handler.py`` does:
build a small dict and return it serialised as JSON. Everything Portway adds on top (routing, the
Lambda event, the proxy-response contract, request ids) is what the benchmark ratio measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import uvloop
from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    if request.can_read_body:
        await request.read()
    payload = {"message": "hello from the handler", "ok": True, "n": 42}
    return web.Response(text=json.dumps(payload), content_type="application/json")


async def serve(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    print(f"minimal server listening on http://{host}:{port}", flush=True)
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
    parser.add_argument("--port", type=int, default=8082)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

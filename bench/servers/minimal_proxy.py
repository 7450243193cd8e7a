"""Minimal aiohttp + uvloop reverse proxy: the baseline for a Portway HTTP_PROXY route.

    python bench/servers/minimal_proxy.py --port 8083 --backend http://127.0.0.1:8081

One pooled ``ClientSession`` for the process. Each request: forward method, path + query, headers
(minus hop-by-hop ones) and body to the backend; copy status, headers (minus framing ones) and body
back. The same shape as the reference ceilings' ``servers/proxy.py`` (about 12.6k req/s there).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web
from multidict import CIMultiDict

SESSION = web.AppKey("session", aiohttp.ClientSession)
BACKEND = web.AppKey("backend", str)

# Hop-by-hop headers (RFC 9110 §7.6.1) plus Host (derived from the backend URL) and the framing
# headers aiohttp recomputes for the body it sends or returns.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_HOP_RESPONSE = _HOP | {"content-encoding"}


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP)
    async with request.app[SESSION].request(
        request.method,
        request.app[BACKEND] + request.raw_path,
        headers=headers,
        data=body or None,
        allow_redirects=False,
    ) as resp:
        data = await resp.read()
        out = CIMultiDict((k, v) for k, v in resp.headers.items() if k.lower() not in _HOP_RESPONSE)
        return web.Response(status=resp.status, body=data, headers=out)


async def serve(host: str, port: int, backend: str) -> None:
    app = web.Application()
    app[BACKEND] = backend.rstrip("/")

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        app[SESSION] = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    print(f"minimal proxy listening on http://{host}:{port} -> {backend}", flush=True)
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
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--backend", default="http://127.0.0.1:8081")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.backend))


if __name__ == "__main__":
    main()

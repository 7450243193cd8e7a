"""The HTTP backends the recorded HTTP / HTTP_PROXY cases were made against, rebuilt from what the
recordings show they answered (an aiohttp app on 127.0.0.1, port 0):

* ``/anything``: like httpbin (which answered LocalStack's ``test_apigateway_header_remapping_http``
  on AWS: ``Server: gunicorn/19.9.0``, CORS headers): ``{"headers": {...as received}, "data": ...}``;
* ``/``: like the Lambda function URL echo of ``test_http_integration_with_lambda``:
  ``{"args", "data", "domain", "headers" (lower-case names), "method", "origin", "path"}`` with the
  function URL's ``x-amzn-RequestId`` and ``X-Amzn-Trace-Id`` response headers; the second server
  answers the same without the ``x-*`` request headers (``trim_x_headers=True`` of
  ``test_http_integration_method``);
* ``/status/{code}``: ``{"message": "", "status_code": code}`` with that status
  (``test_http_integration_invoke_status_code_passthrough``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


def _json(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # "application/json" without aiohttp's "; charset=utf-8", as the recorded backends sent it.
    response = web.Response(status=status, body=json.dumps(payload).encode(), headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


def _data(body: bytes) -> Any:
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


async def _anything(request: web.Request) -> web.Response:
    body = await request.read()
    payload = {"headers": dict(request.headers), "data": body.decode("utf-8", errors="replace")}
    headers = {
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Origin": "*",
        "Connection": "keep-alive",
        "Server": "gunicorn/19.9.0",
    }
    return _json(payload, headers=headers)


async def _echo(request: web.Request, *, trim_x_headers: bool = False) -> web.Response:
    body = await request.read()
    headers_seen = {k.lower(): v for k, v in request.headers.items()}
    if trim_x_headers:
        headers_seen = {k: v for k, v in headers_seen.items() if not k.startswith("x-")}
    payload = {
        "args": dict(request.query),
        "data": _data(body),
        "domain": request.host,
        "headers": headers_seen,
        "method": request.method,
        "origin": request.remote,
        "path": request.path,
    }
    headers = {
        "Connection": "keep-alive",
        "x-amzn-RequestId": str(uuid.uuid4()),
        "X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
    }
    return _json(payload, headers=headers)


async def _echo_trimmed(request: web.Request) -> web.Response:
    return await _echo(request, trim_x_headers=True)


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return _json({"message": "", "status_code": code}, status=code)


@asynccontextmanager
async def recorded_backend() -> AsyncIterator[dict[str, str]]:
    """Serve the backends; yield the stage variables naming them (``backend``, ``backend_trim``)."""
    app = web.Application()
    app.router.add_route("*", "/anything", _anything)
    app.router.add_route("*", "/", _echo)
    app.router.add_route("*", "/status/{code}", _status)
    trimmed = web.Application()
    trimmed.router.add_route("*", "/", _echo_trimmed)
    servers = [TestServer(app, host="127.0.0.1", port=0), TestServer(trimmed, host="127.0.0.1", port=0)]
    for server in servers:
        await server.start_server()
    try:
        yield {"backend": f"127.0.0.1:{servers[0].port}", "backend_trim": f"127.0.0.1:{servers[1].port}"}
    finally:
        for server in servers:
            await server.close()

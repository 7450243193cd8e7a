"""Per-call cost of the pure-Python pieces Portway adds to one HTTP_PROXY request (no network I/O).

    .venv/bin/python bench/micro_pipeline.py [--headers wrk|browser] [--number 20000]

Builds the benchmark's gateway (``servers/portway_server.py``'s config) and an ``aiohttp`` test
request, then times each step of ``server/app.py`` -> ``server/pipeline.py`` ->
``routes/integrations/http.py`` except the backend round trip itself (``ClientSession.request``),
with ``timeit`` (best of 5, microseconds per call). ``--headers wrk`` is what wrk sends (one
``Host`` header); ``browser`` adds the nine headers a typical browser/SDK request carries.

Pin it (``taskset -c 1``) and run it on a quiet machine; the figures are comparable with the
server CPU per request that ``bench_http.py`` reports.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))

from portway_server import bench_config

from routes.dispatch import ApiDispatcher
from routes.integrations.http import HttpProxyIntegration
from server import app as app_module
from server import pipeline as pipeline_module
from server.ids import new_api_id, new_apigw_id, new_request_uuid
from server.messages import HttpResponse
from server.pipeline import RequestContext, RouteStage
from server.render import add_request_headers

BROWSER_HEADERS = [
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"),
    ("Accept", "application/json, text/plain, */*"),
    ("Accept-Language", "en-US,en;q=0.9"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Connection", "keep-alive"),
    ("Cookie", "session=abc123; theme=dark"),
    ("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"),
    ("X-Request-Id", "2b0f1f9e-6b1a-4d7e-9f43-7c1f0d2c9a11"),
    ("Cache-Control", "no-cache"),
]
BACKEND_HEADERS = [
    ("Content-Type", "application/json; charset=utf-8"),
    ("Content-Length", "53"),
    ("Date", "Wed, 25 Nov 2026 11:00:00 GMT"),
    ("Server", "Python/3.11 aiohttp/3.14.5"),
]


def best_us(fn: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--headers", choices=("wrk", "browser"), default="wrk")
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args(argv)
    n = args.number

    config = bench_config("http://127.0.0.1:8081")
    api = config.apis[0]
    proxy_route = next(r for r in api.routes if r.path.startswith("/proxy"))
    dispatcher = ApiDispatcher(config)
    route_stage = RouteStage(dispatcher, config)
    headers = CIMultiDict([("Host", "127.0.0.1:8084")])
    if args.headers == "browser":
        headers.extend(BROWSER_HEADERS)
    aio_request = make_mocked_request("GET", "/dev/proxy/hello", headers=headers)
    loop = asyncio.new_event_loop()
    # Never used to send: a stand-in with what the constructor checks.
    session = SimpleNamespace(cookie_jar=aiohttp.DummyCookieJar(loop=loop))
    integration = HttpProxyIntegration(proxy_route.integration, session)  # type: ignore[arg-type]
    backend_headers = CIMultiDictProxy(CIMultiDict(BACKEND_HEADERS))

    results: list[tuple[str, float]] = []

    def measure(name: str, fn: Callable[[], Any]) -> Any:
        results.append((name, best_us(fn, n)))
        return fn()

    # server/app.py handle_request: copy the aiohttp request into HttpRequest.
    measure("app._headers (raw_headers -> str pairs)", lambda: app_module._headers(aio_request))

    def to_http_request() -> Any:
        raw = aio_request.raw_path
        path, _, query = raw.partition("?")
        return app_module.HttpRequest(
            method=aio_request.method,
            raw_path=path,
            query_string=query,
            headers=app_module._headers(aio_request),
            body=b"",
            source_ip="127.0.0.1",
            host=aio_request.host,
            scheme=aio_request.scheme,
            protocol=f"HTTP/{aio_request.version.major}.{aio_request.version.minor}",
        )

    http_request = measure("app: HttpRequest(...) incl. headers", to_http_request)
    # server/pipeline.py Gateway.handle: ids and context.
    measure("ids.new_request_uuid", new_request_uuid)
    measure("ids.new_apigw_id", new_apigw_id)
    # Whatever the pipeline uses for extendedRequestId (a counter-based id since 9454262).
    new_extended_id = getattr(pipeline_module, "new_message_id", new_apigw_id)
    measure(f"pipeline extended id ({new_extended_id.__name__})", new_extended_id)
    measure("ids.new_api_id (uuid5; resource ids)", lambda: new_api_id(api.id + "/proxy/{proxy+}"))

    def new_ctx() -> RequestContext:
        return RequestContext(
            request=http_request,
            request_id=new_request_uuid(),
            extended_request_id=new_extended_id(),
            now_ms=1,
        )

    measure("pipeline: RequestContext incl. 2 ids", new_ctx)
    measure("dispatch.resolve", lambda: dispatcher.resolve("/dev/proxy/hello"))
    table = dispatcher.resolve("/dev/proxy/hello").table  # type: ignore[union-attr]
    measure("table.match", lambda: table.match("GET", "/proxy/hello"))

    def route() -> RequestContext:
        ctx = RequestContext(request=http_request, request_id="r", extended_request_id="e", now_ms=1)
        loop.run_until_complete(route_stage.on_request(ctx))
        return ctx

    # run_until_complete has its own cost: subtract an empty coroutine's.
    async def nothing() -> None:
        return None

    empty = best_us(lambda: loop.run_until_complete(nothing()), n)
    ctx = route()
    results.append(("RouteStage.on_request (resolve, match, RequestInfo)", best_us(route, n) - empty))
    info = ctx.info
    assert info is not None
    # routes/integrations/http.py
    measure("http: _request_headers", lambda: integration._request_headers(info))
    measure("http: _url (render, query, requote, yarl URL)", lambda: integration._url(info))
    backend_request = measure("http: build_request (total)", lambda: integration.build_request(info))
    from routes.integrations.http import BackendResponse

    backend = BackendResponse(200, backend_headers, b'{"ok":true}')
    measure("http: build_response", lambda: integration.build_response(info, backend_request, backend))

    def finish() -> web.Response:
        response = integration.build_response(info, backend_request, backend)
        add_request_headers(response, request_id="r", extended_request_id="e", http_api=False)
        return app_module._to_web(response)

    measure("build_response + add_request_headers + _to_web", finish)
    measure(
        "app._to_web alone",
        lambda: app_module._to_web(HttpResponse(200, list(BACKEND_HEADERS[:1]) * 5, b"{}")),
    )
    loop.close()

    width = max(len(name) for name, _ in results)
    print(f"headers: {args.headers} ({len(headers)} request headers); best of 5 x {n} calls")
    for name, us in results:
        print(f"  {name:<{width}}  {us:7.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

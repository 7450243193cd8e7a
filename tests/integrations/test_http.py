"""HTTP (non-proxy) integration: the non-proxy header rules and the extension points."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from routes.integrations.http import BackendRequest, BackendResponse, HttpIntegration
from routes.integrations.http_client import close_default_pool
from server.errors import IntegrationFailure, IntegrationTimeout
from server.events import RequestInfo
from server.messages import HttpResponse
from tests.integrations.test_http_proxy import (
    API_ID,
    TRACE_RE,
    RawBackend,
    echo_app,
    header_values,
    make_config,
    make_info,
    raw_response,
)


@pytest.fixture(autouse=True)
async def _close_backend_connections() -> AsyncIterator[None]:
    yield
    await close_default_pool()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()) as s:
        yield s


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    release = asyncio.Event()
    server = TestServer(echo_app(release), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        release.set()
        await server.close()


def integration(uri: str, session: aiohttp.ClientSession, *, timeout_ms: int = 5_000) -> HttpIntegration:
    return HttpIntegration(make_config(uri, proxy=False, timeout_ms=timeout_ms), session)


async def test_request_uses_gateway_user_agent(session: aiohttp.ClientSession, origin: str) -> None:
    info = make_info(
        headers=[("User-Agent", "curl/8.0"), ("Accept-Encoding", "gzip"), ("X-Keep", "1")],
        path_parameters={"id": "7"},
        query="a=1",
    )
    response = await integration(f"{origin}/pets/{{id}}", session).invoke(info)
    seen = json.loads(response.body)
    got = seen["headers"]
    assert seen["raw_path"] == "/pets/7?a=1"
    assert header_values(got, "User-Agent") == [f"AmazonAPIGateway_{API_ID}"]
    assert header_values(got, "X-Amzn-Apigateway-Api-Id") == [API_ID]
    assert header_values(got, "Accept") == ["application/json"]
    # Without request parameter mapping the backend gets none of the client's headers (recorded:
    # LocalStack test_apigateway_header_remapping_http[HTTP], no-param-integration).
    assert header_values(got, "Accept-Encoding") == []
    assert header_values(got, "X-Keep") == []
    # AWS returns the trace id it sent to HTTP (not HTTP_PROXY) backends on the response.
    (sent,) = header_values(got, "X-Amzn-Trace-Id")
    assert TRACE_RE.match(sent)
    assert response.header("X-Amzn-Trace-Id") == sent


NON_PROXY_REMAPPED = [
    ("Authorization", "Basic eDp5"),
    ("Connection", "keep-alive"),
    ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
    ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
    ("Expect", "100-continue"),
    ("Host", "backend.internal"),
    ("Max-Forwards", "3"),
    ("Proxy-Authenticate", "Basic"),
    ("Server", "raw"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "h2c"),
    ("User-Agent", "backend/1"),
    ("WWW-Authenticate", "Bearer"),
]


async def test_default_integration_response_is_200_without_backend_headers(
    session: aiohttp.ClientSession,
) -> None:
    """Recorded: LocalStack test_http_integration_invoke_status_code_passthrough[HTTP] (a backend 400
    answered 200) and test_apigateway_header_remapping_http[HTTP] (none of the backend's headers)."""
    raw = await RawBackend(
        raw_response(
            "HTTP/1.1 202 Accepted",
            [
                *NON_PROXY_REMAPPED,
                ("Content-Length", "4"),
                ("X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ("Via", "1.1 cache"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
            ],
            b"done",
        )
    ).start()
    try:
        response = await integration(f"{raw.origin}/x", session).invoke(make_info())
    finally:
        await raw.close()
    assert response.status == 200
    assert response.body == b"done"
    assert [name for name, _ in response.headers] == ["Content-Type", "X-Amzn-Trace-Id"]
    assert response.header("Content-Type") == "application/json"
    # The backend's own trace header is replaced by the one the gateway sent.
    assert response.header("X-Amzn-Trace-Id") != "Root=1-00000000-000000000000000000000000"


async def test_compressed_and_chunked_backend_body_is_decoded(session: aiohttp.ClientSession) -> None:
    data = gzip.compress(b"hello " * 20)
    chunked = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
    raw = await RawBackend(
        raw_response(
            "HTTP/1.1 200 OK", [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")], chunked
        )
    ).start()
    try:
        response = await integration(f"{raw.origin}/x", session).invoke(make_info())
    finally:
        await raw.close()
    assert response.body == b"hello " * 20
    names = {k.lower() for k, _ in response.headers}
    assert "content-encoding" not in names
    assert "transfer-encoding" not in names


async def test_failures_share_the_boundary(session: aiohttp.ClientSession, origin: str) -> None:
    with pytest.raises(IntegrationTimeout):
        await integration(f"{origin}/slow-head", session, timeout_ms=100).invoke(make_info())
    raw = await RawBackend(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").start()
    try:
        with pytest.raises(IntegrationFailure):
            await integration(f"{raw.origin}/x", session).invoke(make_info())
    finally:
        await raw.close()


async def test_extension_points(session: aiohttp.ClientSession, origin: str) -> None:
    """Mapping templates / integration responses will override build_request / build_response."""

    class Mapped(HttpIntegration):
        def build_request(self, info: RequestInfo) -> BackendRequest:
            request = super().build_request(info)
            request.headers["X-Mapped"] = "from-template"
            request.body = b'{"templated": true}'
            return request

        def build_response(
            self, info: RequestInfo, request: BackendRequest, backend: BackendResponse
        ) -> HttpResponse:
            seen = json.loads(backend.body)
            return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(seen).encode())

    mapped = Mapped(make_config(f"{origin}/m", http_method="POST", proxy=False), session)
    response = await mapped.invoke(make_info(method="GET", body=b"original"))
    seen = json.loads(response.body)
    assert seen["method"] == "POST"
    assert header_values(seen["headers"], "X-Mapped") == ["from-template"]
    assert bytes.fromhex(seen["body"]) == b'{"templated": true}'

"""HTTP_PROXY integration against real backends on port 0 (aiohttp apps and raw TCP servers).

The module-level helpers (``make_info``, ``echo_app``, ``RawBackend``, ...) are shared with
test_http.py; fixtures are defined per module.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from routes.integrations.http import BackendRequest, HttpProxyIntegration
from routes.integrations.http_client import (
    BackendConnectError,
    BackendDisconnected,
    BackendError,
    BackendProtocolError,
    close_default_pool,
)
from server.config.model import IntegrationConfig, IntegrationType
from server.errors import ApiConfigurationError, IntegrationFailure, IntegrationTimeout
from server.events import RequestInfo
from server.messages import HttpRequest

API_ID = "abc123defg"
NOW_MS = 1_700_000_000_123
TRACE_RE = re.compile(r"^Root=1-([0-9a-f]{8})-[0-9a-f]{24}$")
BINARY = bytes(range(256)) * 4


# -- shared helpers ------------------------------------------------------------------------------


def make_info(
    *,
    method: str = "GET",
    raw_path: str = "/",
    query: str = "",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    path_parameters: dict[str, str] | None = None,
    stage_variables: dict[str, str] | None = None,
) -> RequestInfo:
    request = HttpRequest(
        method=method,
        raw_path=raw_path,
        query_string=query,
        headers=tuple(headers),
        body=body,
        source_ip="127.0.0.1",
        host="gateway.example:8080",
    )
    return RequestInfo(
        request=request,
        api_id=API_ID,
        account_id="123456789012",
        stage="dev",
        stage_prefix="/dev",
        path=raw_path,
        resource="/{proxy+}",
        route_key=f"{method} /{{proxy+}}",
        path_parameters=path_parameters or {},
        stage_variables=stage_variables or {},
        request_id="11111111-2222-3333-4444-555555555555",
        extended_request_id="BFHPhFe3IAMF95g=",
        now_ms=NOW_MS,
    )


def make_config(
    uri: str, *, http_method: str = "ANY", timeout_ms: int = 5_000, proxy: bool = True
) -> IntegrationConfig:
    kind = IntegrationType.HTTP_PROXY if proxy else IntegrationType.HTTP
    return IntegrationConfig(type=kind, uri=uri, http_method=http_method, timeout_ms=timeout_ms)


def header_values(pairs: Iterable[Iterable[str]], name: str) -> list[str]:
    lname = name.lower()
    return [v for k, v in pairs if k.lower() == lname]


def echo_app(release: asyncio.Event) -> web.Application:
    """Backend routes: echo, fixed responses, redirects, gzip, slow head and slow body."""

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return web.json_response(
            {
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
                "body": body.hex(),
                "peer_port": peer[1] if peer else None,
            }
        )

    async def cookies(request: web.Request) -> web.Response:
        response = web.Response(status=201, text="made", headers={"Server": "backend/1.0"})
        response.headers.add("Set-Cookie", "a=1; Path=/")
        response.headers.add("Set-Cookie", "b=2; HttpOnly")
        response.headers.add("X-Multi", "one")
        response.headers.add("X-Multi", "two")
        response.headers["Via"] = "1.1 some-cache"
        return response

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=301, headers={"Location": "/elsewhere"}, text="moved")

    async def binary(request: web.Request) -> web.Response:
        return web.Response(body=BINARY, content_type="application/octet-stream")

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.Response(status=code, body=f"status {code}".encode())

    async def gzipped(request: web.Request) -> web.Response:
        # A backend that compresses whatever the request's Accept-Encoding says.
        return web.Response(
            body=gzip.compress(b"plain text " * 50),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )

    async def slow_head(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async def slow_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        await release.wait()
        return response

    app = web.Application()
    app.router.add_route("*", "/cookies", cookies)
    app.router.add_route("*", "/redirect", redirect)
    app.router.add_route("*", "/binary", binary)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_route("*", "/gzip", gzipped)
    app.router.add_route("*", "/slow-head", slow_head)
    app.router.add_route("*", "/slow-body", slow_body)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


class RawBackend:
    """A TCP server that answers every connection with fixed bytes, then closes it.

    Gives exact control over response header names/casing and lets tests send broken responses.
    """

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> RawBackend:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.response)
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def raw_response(status_line: str, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return f"{status_line}\r\n{head}\r\n".encode("latin-1") + body


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port with nothing listening: bound (so nobody else takes it) but never listen()ed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _close_backend_connections() -> AsyncIterator[None]:
    # The integrations send through the loop's shared connection pool (the app closes it).
    yield
    await close_default_pool()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # Configured like the app's shared session (server/app.py).
    async with aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()) as s:
        yield s


@pytest.fixture
async def backend() -> AsyncIterator[tuple[str, asyncio.Event]]:
    release = asyncio.Event()
    server = TestServer(echo_app(release), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", release
    finally:
        release.set()
        await server.close()


@pytest.fixture
def origin(backend: tuple[str, asyncio.Event]) -> str:
    return backend[0]


async def echo(
    session: aiohttp.ClientSession, uri: str, info: RequestInfo, **config: Any
) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    response = await HttpProxyIntegration(make_config(uri, **config), session).invoke(info)
    return response.status, json.loads(response.body), response.headers


# -- URL building --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "params", "stage", "query", "expected"),
    [
        ("{o}/pets", {}, {}, "", "/pets"),
        ("{o}/pets/{id}", {"id": "42"}, {}, "", "/pets/42"),
        ("{o}/{proxy}", {"proxy": "a/b/c"}, {}, "", "/a/b/c"),
        ("{o}/api/{proxy+}", {"proxy": "a%2Fb/c%20d/%C3%A9"}, {}, "", "/api/a%2Fb/c%20d/%C3%A9"),
        ("{o}/{proxy}", {"proxy": "x"}, {}, "q=a%20b+c&q=2&e=%26", "/x?q=a%20b+c&q=2&e=%26"),
        ("{o}/r?fixed=1", {}, {}, "a=2", "/r?fixed=1&a=2"),
        ("{o}/r?v=${stageVariables.v}", {}, {"v": "7"}, "a=2", "/r?v=7&a=2"),
        ("{o}/${stageVariables.p}/bar", {}, {"p": "v2"}, "", "/v2/bar"),
        ("{o}/pre-${stageVariables.p}-post/{id}", {"id": "1"}, {"p": "v2"}, "", "/pre-v2-post/1"),
        ("http://${stageVariables.host}/whole", {}, {"host": "{host}"}, "", "/whole"),
        ("${stageVariables.url}/{proxy}", {"proxy": "p"}, {"url": "{o}"}, "x=1", "/p?x=1"),
    ],
)
async def test_url_building(
    session: aiohttp.ClientSession,
    origin: str,
    template: str,
    params: dict[str, str],
    stage: dict[str, str],
    query: str,
    expected: str,
) -> None:
    host = origin.removeprefix("http://")
    uri = template.replace("{o}", origin)
    stage = {k: v.replace("{o}", origin).replace("{host}", host) for k, v in stage.items()}
    info = make_info(path_parameters=params, stage_variables=stage, query=query)
    status, seen, _ = await echo(session, uri, info)
    assert status == 200
    assert seen["raw_path"] == expected


async def test_method_any_uses_clients_and_fixed_method_overrides(
    session: aiohttp.ClientSession, origin: str
) -> None:
    _, seen, _ = await echo(session, f"{origin}/m", make_info(method="DELETE"))
    assert seen["method"] == "DELETE"
    _, seen, _ = await echo(session, f"{origin}/m", make_info(method="GET"), http_method="post")
    assert seen["method"] == "POST"


# -- request headers -----------------------------------------------------------------------------

DROPPED = [
    ("Connection", "close"),
    ("Content-Length", "999"),  # a stale value would make the backend wait for 999 bytes
    ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
    ("Expect", "100-continue"),
    ("Max-Forwards", "3"),
    ("Proxy-Authenticate", "Basic"),
    ("Server", "client"),
    ("TE", "trailers"),
    ("Transfer-Encoding", "chunked"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "websocket"),
    ("WWW-Authenticate", "Basic"),
    ("Accept-Encoding", "gzip, br"),
]


async def test_request_headers_dropped_added_and_kept(session: aiohttp.ClientSession, origin: str) -> None:
    headers = [
        ("Host", "gateway.example:8080"),
        *DROPPED,
        ("X-Repeat", "1"),
        ("x-repeat", "2"),
        ("Cookie", "session=abc"),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/execute-api/aws4_request"),
        ("X-Amzn-Apigateway-Api-Id", "spoofed"),
    ]
    info = make_info(method="POST", headers=headers, body=b"hello")
    _, seen, _ = await echo(session, f"{origin}/h", info)
    got = seen["headers"]
    names = {k.lower() for k, _ in got}
    for name, _ in DROPPED:
        if name.lower() == "content-length":
            assert header_values(got, name) == ["5"]
        elif name.lower() == "accept-encoding":
            # Forwarded as the client sent it (recorded: LocalStack test_apigateway_header_remapping_http).
            assert header_values(got, name) == [value_of(DROPPED, name)]
        else:
            assert name.lower() not in names, name
    assert header_values(got, "Host") == [origin.removeprefix("http://")]
    assert "authorization" not in names  # SigV4 signature dropped
    assert header_values(got, "x-repeat") == ["1", "2"]
    assert header_values(got, "Cookie") == ["session=abc"]
    assert header_values(got, "X-Amzn-Apigateway-Api-Id") == [API_ID]
    assert header_values(got, "Accept") == ["application/json"]
    assert header_values(got, "User-Agent") == [f"AmazonAPIGateway_{API_ID}"]
    assert "content-type" not in names  # no invented application/octet-stream
    (trace,) = header_values(got, "X-Amzn-Trace-Id")
    match = TRACE_RE.match(trace)
    assert match is not None
    assert int(match.group(1), 16) == NOW_MS // 1000
    assert bytes.fromhex(seen["body"]) == b"hello"


def value_of(pairs: list[tuple[str, str]], name: str) -> str:
    return next(v for k, v in pairs if k.lower() == name.lower())


async def test_client_accept_user_agent_authorization_and_trace_pass(
    session: aiohttp.ClientSession, origin: str
) -> None:
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    headers = [
        ("accept", "text/html"),
        ("user-agent", "curl/8.0"),
        ("Authorization", "Bearer token"),
        ("X-Amzn-Trace-Id", trace),
        ("Content-Type", "text/plain"),
    ]
    _, seen, _ = await echo(session, f"{origin}/h", make_info(headers=headers))
    got = seen["headers"]
    assert header_values(got, "Accept") == ["text/html"]
    assert header_values(got, "User-Agent") == ["curl/8.0"]
    assert header_values(got, "Authorization") == ["Bearer token"]
    assert header_values(got, "X-Amzn-Trace-Id") == [trace]
    assert header_values(got, "Content-Type") == ["text/plain"]


@pytest.mark.parametrize(("method", "length"), [("GET", None), ("POST", "0"), ("DELETE", "0")])
async def test_empty_body_framing(
    session: aiohttp.ClientSession, origin: str, method: str, length: str | None
) -> None:
    _, seen, _ = await echo(session, f"{origin}/e", make_info(method=method))
    got = seen["headers"]
    assert header_values(got, "Content-Length") == ([length] if length else [])
    assert header_values(got, "Content-Type") == []  # none invented for an empty body either
    assert header_values(got, "Host") == [origin.removeprefix("http://")]
    assert got[0][0] == "Host"


async def test_backend_request_api_for_mapping_steps(session: aiohttp.ClientSession, origin: str) -> None:
    integration = HttpProxyIntegration(make_config(f"{origin}/a"), session)
    request = integration.build_request(make_info(headers=[("X-One", "1")], query="q=1"))
    assert str(request.url) == f"{origin}/a?q=1"
    request.url = URL(f"{origin}/b?r=2")
    request.headers["X-Two"] = "2"
    del request.headers["X-One"]
    request.body = b"new"
    seen = json.loads((await integration.send(request)).body)
    assert seen["raw_path"] == "/b?r=2"
    assert header_values(seen["headers"], "X-Two") == ["2"]
    assert header_values(seen["headers"], "X-One") == []
    assert header_values(seen["headers"], "Content-Length") == ["3"]
    built = BackendRequest("PUT", f"{origin}/c", [("X-Three", "3")], b"", "Root=1-0-0")
    seen = json.loads((await integration.send(built)).body)
    assert (seen["method"], seen["raw_path"]) == ("PUT", "/c")
    assert header_values(seen["headers"], "X-Three") == ["3"]
    with pytest.raises(ValueError):
        built.url = URL("ftp://example.com/")


async def test_trace_id_is_new_per_request(session: aiohttp.ClientSession, origin: str) -> None:
    integration = HttpProxyIntegration(make_config(f"{origin}/t"), session)
    traces = set()
    for _ in range(3):
        response = await integration.invoke(make_info(headers=[("X-Amzn-Trace-Id", "garbage")]))
        traces.update(header_values(json.loads(response.body)["headers"], "X-Amzn-Trace-Id"))
    assert len(traces) == 3
    assert all(TRACE_RE.match(t) for t in traces)


# -- response ------------------------------------------------------------------------------------


async def test_response_headers_remapped_dropped_and_repeats_kept(
    session: aiohttp.ClientSession, origin: str
) -> None:
    integration = HttpProxyIntegration(make_config(f"{origin}/cookies"), session)
    response = await integration.invoke(make_info())
    assert response.status == 201
    assert response.body == b"made"
    headers = response.headers
    assert header_values(headers, "Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert header_values(headers, "X-Multi") == ["one", "two"]
    assert header_values(headers, "x-amzn-Remapped-Server") == ["backend/1.0"]
    assert header_values(headers, "x-amzn-Remapped-Content-Length") == ["4"]
    assert len(header_values(headers, "x-amzn-Remapped-Date")) == 1
    names = {k.lower() for k, _ in headers}
    assert not names & {"server", "content-length", "date", "via", "connection", "transfer-encoding"}
    assert ("x-amzn-Remapped-Server", "backend/1.0") in headers  # AWS's casing of the prefix


async def test_response_exact_names_from_raw_backend() -> None:
    raw = await RawBackend(
        raw_response(
            "HTTP/1.1 200 OK",
            [
                ("Connection", "keep-alive"),
                ("Content-Length", "2"),
                ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
                ("Server", "raw"),
                ("Via", "1.1 cache"),
                ("Content-Encoding", "identity"),
                ("x-lower-case", "kept"),
                ("set-cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("X-Utf8", "caf\u00e9".encode().decode("latin-1")),  # sent as UTF-8 bytes
                ("X-Latin1", "caf\u00e9"),  # sent as one Latin-1 byte, not valid UTF-8
            ],
            b"ok",
        )
    ).start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            response = await HttpProxyIntegration(make_config(f"{raw.origin}/x"), session).invoke(make_info())
    finally:
        await raw.close()
    # Well-known names are spelled canonically ("set-cookie" -> "Set-Cookie"); others keep the
    # backend's spelling. Header names are case-insensitive either way.
    assert response.headers == [
        ("x-amzn-Remapped-Connection", "keep-alive"),
        ("x-amzn-Remapped-Content-Length", "2"),
        ("x-amzn-Remapped-Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("x-amzn-Remapped-Server", "raw"),
        ("x-lower-case", "kept"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Utf8", "caf\u00e9"),
        ("X-Latin1", "caf\u00e9"),
    ]
    for _, value in response.headers:
        value.encode("utf-8")  # writable by the gateway's server (no lone surrogates)
    assert response.body == b"ok"


async def test_chunked_response_transfer_encoding_dropped() -> None:
    raw = await RawBackend(
        raw_response(
            "HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
    ).start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            response = await HttpProxyIntegration(make_config(f"{raw.origin}/x"), session).invoke(make_info())
    finally:
        await raw.close()
    assert response.body == b"abcde"
    assert response.headers == []


@pytest.mark.parametrize("code", [200, 202, 204, 400, 404, 418, 500, 503])
async def test_status_and_body_passthrough(session: aiohttp.ClientSession, origin: str, code: int) -> None:
    response = await HttpProxyIntegration(make_config(f"{origin}/status/{code}"), session).invoke(make_info())
    assert response.status == code
    assert response.body == (b"" if code == 204 else f"status {code}".encode())


async def test_redirect_is_not_followed(session: aiohttp.ClientSession, origin: str) -> None:
    response = await HttpProxyIntegration(make_config(f"{origin}/redirect"), session).invoke(make_info())
    assert response.status == 301
    assert response.header("Location") == "/elsewhere"
    assert response.body == b"moved"


async def test_binary_bodies_both_ways(session: aiohttp.ClientSession, origin: str) -> None:
    response = await HttpProxyIntegration(make_config(f"{origin}/binary"), session).invoke(make_info())
    assert response.body == BINARY
    assert response.header("Content-Type") == "application/octet-stream"
    info = make_info(method="PUT", body=BINARY, headers=[("Content-Type", "image/png")])
    _, seen, _ = await echo(session, f"{origin}/upload", info)
    assert bytes.fromhex(seen["body"]) == BINARY


async def test_compressing_backend_is_decoded_and_content_encoding_dropped(
    session: aiohttp.ClientSession, origin: str
) -> None:
    # The integration must hand back a body that matches the headers it returns (no
    # Content-Encoding), whatever the backend did with "Accept-Encoding: identity".
    response = await HttpProxyIntegration(make_config(f"{origin}/gzip"), session).invoke(make_info())
    assert response.body == b"plain text " * 50
    assert response.header("Content-Encoding") is None


async def test_head_request(session: aiohttp.ClientSession, origin: str) -> None:
    response = await HttpProxyIntegration(make_config(f"{origin}/binary"), session).invoke(
        make_info(method="HEAD")
    )
    assert response.status == 200
    assert response.body == b""
    assert response.header("x-amzn-Remapped-Content-Length") == str(len(BINARY))


async def test_pooled_connection_is_reused_and_session_left_open(
    session: aiohttp.ClientSession, origin: str
) -> None:
    integration = HttpProxyIntegration(make_config(f"{origin}/p"), session)
    ports = [json.loads((await integration.invoke(make_info())).body)["peer_port"] for _ in range(3)]
    assert len(set(ports)) == 1  # one keep-alive connection from the shared pool
    await integration.close()
    assert not session.closed


# -- failures ------------------------------------------------------------------------------------


async def test_slow_backend_times_out(session: aiohttp.ClientSession, origin: str) -> None:
    integration = HttpProxyIntegration(make_config(f"{origin}/slow-head", timeout_ms=200), session)
    started = time.monotonic()
    with pytest.raises(IntegrationTimeout) as info:
        await integration.invoke(make_info())
    elapsed = time.monotonic() - started
    assert 0.19 <= elapsed < 0.7
    assert isinstance(info.value.__cause__, TimeoutError)
    assert info.value.status == 504
    assert info.value.message == "Endpoint request timed out"


async def test_slow_body_times_out(session: aiohttp.ClientSession, origin: str) -> None:
    integration = HttpProxyIntegration(make_config(f"{origin}/slow-body", timeout_ms=200), session)
    started = time.monotonic()
    with pytest.raises(IntegrationTimeout):
        await integration.invoke(make_info())
    assert time.monotonic() - started < 0.7


async def test_backend_down(session: aiohttp.ClientSession, closed_port: int) -> None:
    integration = HttpProxyIntegration(make_config(f"http://127.0.0.1:{closed_port}/x"), session)
    with pytest.raises(IntegrationFailure) as info:
        await integration.invoke(make_info())
    assert isinstance(info.value.__cause__, BackendConnectError)
    assert isinstance(info.value.__cause__.__cause__, ConnectionRefusedError)
    assert info.value.status == 502
    assert info.value.message == "Internal server error"


async def test_unknown_host(session: aiohttp.ClientSession) -> None:
    integration = HttpProxyIntegration(make_config("http://no-such-host.invalid/x"), session)
    with pytest.raises(IntegrationFailure) as info:
        await integration.invoke(make_info())
    assert isinstance(info.value.__cause__, BackendConnectError)
    assert isinstance(info.value.__cause__.__cause__, socket.gaierror)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
            BackendDisconnected,
            id="truncated-body",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", BackendDisconnected, id="truncated-head"),
        pytest.param(b"", BackendDisconnected, id="closed-without-reply"),
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", BackendProtocolError, id="not-http"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", BackendProtocolError, id="bad-content-length"
        ),
    ],
)
async def test_broken_responses_are_integration_failures(
    session: aiohttp.ClientSession, reply: bytes, error: type[BackendError]
) -> None:
    raw = await RawBackend(reply).start()
    try:
        integration = HttpProxyIntegration(make_config(f"{raw.origin}/x"), session)
        with pytest.raises(IntegrationFailure) as info:
            await integration.invoke(make_info())
    finally:
        await raw.close()
    assert isinstance(info.value.__cause__, error)
    assert raw.requests  # the request did reach the backend


@pytest.mark.parametrize(
    ("uri", "stage", "params"),
    [
        pytest.param("http://${stageVariables.host}/x", {}, {}, id="undefined-host-variable"),
        pytest.param("${stageVariables.scheme}://example.com/x", {"scheme": "ftp"}, {}, id="ftp"),
        pytest.param("http://example.com:${stageVariables.port}/x", {"port": "abc"}, {}, id="bad-port"),
        pytest.param("http://${stageVariables.h}/x", {"h": "exa mple"}, {}, id="space-in-host"),
        pytest.param("http://[::1/x", {}, {}, id="bad-ipv6"),
        pytest.param("not a url", {}, {}, id="relative"),
        pytest.param("http://example.com/{id}", {}, {}, id="missing-path-parameter"),
    ],
)
async def test_invalid_backend_url_is_configuration_error(
    session: aiohttp.ClientSession, uri: str, stage: dict[str, str], params: dict[str, str]
) -> None:
    integration = HttpProxyIntegration(make_config(uri), session)
    with pytest.raises(ApiConfigurationError) as info:
        await integration.invoke(make_info(stage_variables=stage, path_parameters=params))
    assert info.value.status == 500


def test_uri_is_required() -> None:
    with pytest.raises(ValueError, match="uri"):
        HttpProxyIntegration(IntegrationConfig(type=IntegrationType.HTTP_PROXY), None)  # type: ignore[arg-type]


async def test_session_with_a_cookie_jar_is_refused() -> None:
    async with aiohttp.ClientSession() as shared_jar:
        with pytest.raises(ValueError, match="DummyCookieJar"):
            HttpProxyIntegration(make_config("http://example.com/"), shared_jar)


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("http://[::1]:8080/x", "::1"),
        ("https://API.Example.COM/x", "API.Example.COM"),
        ("http://10.0.0.1/x", "10.0.0.1"),
    ],
)
async def test_valid_hosts_build(session: aiohttp.ClientSession, uri: str, host: str) -> None:
    request = HttpProxyIntegration(make_config(uri), session).build_request(make_info())
    assert request.url.raw_host == host


async def test_undecodable_content_encoding_is_passed_on_with_its_header(
    session: aiohttp.ClientSession,
) -> None:
    # Accept-Encoding goes to the backend as sent; a coding the gateway cannot decode must keep its
    # Content-Encoding, or the client would get compressed bytes labelled as plain.
    raw = await RawBackend(
        raw_response(
            "HTTP/1.1 200 OK",
            [("Content-Encoding", "x-unknown"), ("Content-Length", "3"), ("x-amzn-RequestId", "abc")],
            b"\x01\x02\x03",
        )
    ).start()
    try:
        response = await HttpProxyIntegration(make_config(f"{raw.origin}/x"), session).invoke(make_info())
    finally:
        await raw.close()
    assert response.body == b"\x01\x02\x03"
    assert response.header("Content-Encoding") == "x-unknown"
    # Recorded (LocalStack test_http_integration_with_lambda[HTTP_PROXY]): remapped.
    assert response.header("x-amzn-Remapped-x-amzn-RequestId") == "abc"
    assert response.header("x-amzn-RequestId") is None

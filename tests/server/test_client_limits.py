"""Hostile clients against the listener (issue 11, items 4, 14, 15): read deadlines, keep-alive,
header cap, HTTP/0.9, parser errors in the gateway's shape, no ``Server`` header."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    MockResponse,
    RouteConfig,
    StageConfig,
)
from server.limits import ServerLimits
from tests.server.live import body_of, live_gateway, seconds_until_closed, send_raw, status_of

BOUND = 0.6  # every deadline in these tests; "closed within the bound" allows generous slack
SLACK = 3.0
LIMITS = ServerLimits(header_timeout_s=BOUND, body_timeout_s=BOUND, keepalive_timeout_s=BOUND)


def mock(method: str, path: str) -> RouteConfig:
    return RouteConfig(
        method=method,
        path=path,
        integration=IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(200, body='{"ok":true}')),
    )


CONFIG = GatewayConfig(
    apis=(
        ApiConfig(
            name="api",
            id="apiid00001",
            kind=ApiKind.REST,
            stages=(StageConfig("dev"),),
            routes=(mock("GET", "/hello"), mock("POST", "/echo")),
            max_body_bytes=1024 * 1024,
        ),
    ),
    account_throttle=None,
)


@pytest.fixture
async def port() -> int:
    async with live_gateway(CONFIG, LIMITS) as bound_port:
        yield bound_port


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # nothing at all
        b"GET /dev/hel",  # half a request line
        b"GET /dev/hello HTTP/1.1\r\nHost: x\r\nX-Half: ",  # half the headers
    ],
    ids=["nothing", "half-request-line", "half-headers"],
)
async def test_an_incomplete_head_is_closed_within_the_header_timeout(port: int, sent: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        await writer.drain()
        elapsed, data = await seconds_until_closed(reader, BOUND + SLACK)
    finally:
        writer.close()
    assert BOUND * 0.8 <= elapsed < BOUND + SLACK
    assert data == b""  # no answer to a client that could not finish its headers


async def test_a_head_trickled_byte_by_byte_is_still_bounded(port: int) -> None:
    """The header deadline is per request head, not per read: trickling does not extend it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    closed = asyncio.create_task(seconds_until_closed(reader, BOUND + SLACK))
    try:
        for byte in b"GET /dev/hello HTTP/1.1\r\nHost: x\r\n":
            if closed.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)  # a slow client: each byte well inside any per-read timer
        elapsed, _ = await closed
    finally:
        writer.close()
    assert elapsed < BOUND + SLACK


async def test_half_a_body_is_answered_408_and_closed_within_the_body_timeout(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /dev/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
        elapsed, data = await seconds_until_closed(reader, BOUND + SLACK)
    finally:
        writer.close()
    assert BOUND * 0.8 <= elapsed < BOUND + SLACK
    assert status_of(data) == 408
    assert json.loads(body_of(data)) == {"message": "Request Timeout"}


async def test_an_idle_keepalive_connection_is_closed_within_the_keepalive_timeout(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /dev/hello HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 5)
        assert status_of(head) == 200
        elapsed, rest = await seconds_until_closed(reader, BOUND + SLACK)
    finally:
        writer.close()
    assert BOUND * 0.8 <= elapsed < BOUND + SLACK
    assert rest == b""


async def test_a_keepalive_connection_serves_several_requests(port: int) -> None:
    """The deadlines do not cut a well-behaved client's keep-alive connection short."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(3):
            writer.write(b"POST /dev/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 5)
            assert status_of(head) == 200
            await asyncio.sleep(BOUND / 2)  # idle, but within the keep-alive timeout
    finally:
        writer.close()


# -- item 15: header cap, HTTP/0.9, parser errors, %0A, Server header --------------------------


async def test_headers_over_10240_bytes_in_total_are_refused_431(port: int) -> None:
    headers = b"".join(b"X-Big-%d: %s\r\n" % (i, b"a" * 6000) for i in range(2))  # 12,000 bytes
    data = await send_raw(port, b"GET /dev/hello HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_of(data) == 431
    assert json.loads(body_of(data)) == {"message": "Request Header Fields Too Large"}
    assert b"x-amzn-ErrorType: BadRequestException" in data


async def test_many_large_headers_are_refused(port: int) -> None:
    """The issue's case: 120 headers of 8 KB were accepted and forwarded."""
    headers = b"".join(b"X-H-%d: %s\r\n" % (i, b"b" * 8192) for i in range(120))
    data = await send_raw(port, b"GET /dev/hello HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_of(data) == 431


async def test_one_header_line_longer_than_the_cap_is_refused_431(port: int) -> None:
    data = await send_raw(
        port, b"GET /dev/hello HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"c" * 12000 + b"\r\n\r\n"
    )
    assert status_of(data) == 431
    assert json.loads(body_of(data)) == {"message": "Request Header Fields Too Large"}


async def test_headers_under_the_cap_are_served(port: int) -> None:
    data = await send_raw(
        port,
        b"GET /dev/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"d" * 9000 + b"\r\n\r\n",
    )
    assert status_of(data) == 200


async def test_http_0_9_is_refused(port: int) -> None:
    data = await send_raw(port, b"GET /dev/hello\r\n\r\n")
    assert status_of(data) == 400
    assert json.loads(body_of(data)) == {"message": "Bad Request"}


async def test_a_malformed_request_gets_the_gateway_shape_without_parser_internals(port: int) -> None:
    data = await send_raw(port, b"GET /dev/hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert status_of(data) == 400
    assert json.loads(body_of(data)) == {"message": "Bad Request"}
    assert b"x-amzn-RequestId" in data and b"Bad Header" not in data and b"^" not in body_of(data)


async def test_a_newline_in_the_path_gets_the_gateway_shape(port: int) -> None:
    data = await send_raw(port, b"GET /dev/hello%0A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(data) == 403
    assert json.loads(body_of(data)) == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /dev/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # 200
        b"GET /dev/nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # 403
        b"GET /dev/hello HTTP/1.1\r\nBad Header\r\n\r\n",  # parser 400
        b"POST /dev/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",  # 413
        b"GET /@metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # management
    ],
    ids=["ok", "no-route", "parser-error", "too-large", "metrics"],
)
async def test_no_response_carries_a_server_header(port: int, request_bytes: bytes) -> None:
    data = await send_raw(port, request_bytes)
    head = data.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.")  # aiohttp answers a parser error as HTTP/1.0
    assert b"\r\nserver:" not in head


# -- item 14: client errors log one short line, rate-limited -----------------------------------


async def test_malformed_requests_log_short_rate_limited_lines(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(50):
        await send_raw(port, b"GET /dev/hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    for _ in range(5):
        await send_raw(port, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")  # TLS on the plain port
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], [
        r.getMessage() for r in records
    ]
    lines = [r.getMessage() for r in records if r.name == "portway.http"]
    assert 1 <= len(lines) <= 10
    assert all("\n" not in line and len(line) < 250 for line in lines)
    assert "400" in lines[0] and "127.0.0.1" in lines[0]


# -- open files ----------------------------------------------------------------------------------


async def test_a_warning_is_logged_when_connections_near_the_fd_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aiohttp import web

    from server.app import create_app
    from server.http_server import GatewayRunner

    caplog.set_level(logging.WARNING, logger="portway.http")
    runner = GatewayRunner(create_app(CONFIG, limits=LIMITS), limits=LIMITS, fd_limit=10, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    writers = []
    try:
        for _ in range(9):
            _, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
            writers.append(writer)
        deadline = asyncio.get_running_loop().time() + 5
        while "near the open-files limit 10" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, caplog.text
            await asyncio.sleep(0.01)
    finally:
        for writer in writers:
            writer.close()
        await runner.cleanup()
    assert len([r for r in caplog.records if "open-files limit" in r.getMessage()]) == 1  # once a minute


def test_raise_fd_limit_raises_the_soft_limit_to_the_hard_limit() -> None:
    import subprocess
    import sys

    code = (
        "import resource; s, h = resource.getrlimit(resource.RLIMIT_NOFILE);"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, h), h));"
        "from server.http_server import raise_fd_limit; print(raise_fd_limit(), h,"
        " resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    returned, hard, soft = (int(x) for x in out.stdout.split())
    assert returned == soft == hard

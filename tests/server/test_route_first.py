"""Route before reading the body (issue 11, item 5): refusals (403/404/413) answer before a body
byte is read, bodies in flight are capped process-wide, and memory stays low under large bodies."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

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
from tests.server.live import body_of, gateway_process, live_gateway, rss_bytes, send_raw, status_of

MB = 1024 * 1024
ECHO = RouteConfig(
    method="POST",
    path="/echo",
    integration=IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(200, body='{"ok":true}')),
)
CONFIG = GatewayConfig(
    apis=(
        ApiConfig(
            name="api",
            id="apiid00001",
            kind=ApiKind.REST,
            stages=(StageConfig("dev"),),
            routes=(ECHO,),
            max_body_bytes=MB,
        ),
        ApiConfig(name="h", id="httpid0001", kind=ApiKind.HTTP, stages=(StageConfig("$default"),), routes=()),
    ),
    account_throttle=None,
)
BUDGET = 1000
LIMITS = ServerLimits(max_body_bytes_in_flight=BUDGET, body_timeout_s=5)


@pytest.fixture
async def port() -> int:
    async with live_gateway(CONFIG, LIMITS) as bound_port:
        yield bound_port


async def answer_to_head(port: int, head: bytes) -> bytes:
    """Send only a request head (a body is announced but never sent): the answer must come anyway."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(5):
            data = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line for line in data.split(b"\r\n") if line.lower().startswith(b"content-length:")
                ).split(b":")[1]
            )
            return data + await reader.readexactly(length)
    finally:
        writer.close()


@pytest.mark.parametrize("expect", [b"", b"Expect: 100-continue\r\n"], ids=["plain", "expect-100"])
async def test_unknown_path_is_refused_before_the_body(port: int, expect: bytes) -> None:
    head = b"POST /dev/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n" % (MB - 1, expect)
    data = await answer_to_head(port, head)
    assert status_of(data) == 403  # no 100 Continue first: the client never sends its body
    assert json.loads(body_of(data)) == {"message": "Missing Authentication Token"}
    assert b"connection: close" in data.lower()


async def test_unknown_http_api_path_is_refused_404_before_the_body(port: int) -> None:
    head = b"PUT /nowhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (
        5 * MB
    )
    assert status_of(await answer_to_head(port, head)) == 404


async def test_content_length_over_the_api_limit_is_413_before_the_body(port: int) -> None:
    head = b"POST /dev/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MB + 1)
    data = await answer_to_head(port, head)
    assert status_of(data) == 413
    assert body_of(data) == b"HTTP content length exceeded 1048576 bytes."


async def test_a_routed_request_gets_100_continue_then_its_answer(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /dev/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        final = await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 5)
        assert status_of(final) == 200
    finally:
        writer.close()


async def test_bodies_over_the_in_flight_budget_get_503(port: int) -> None:
    data = await send_raw(
        port,
        b"POST /dev/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (BUDGET + 1)
        + b"x" * (BUDGET + 1),
    )
    assert status_of(data) == 503
    assert json.loads(body_of(data)) == {"message": "Service Unavailable"}
    assert b"Retry-After: 1" in data
    # A chunked body (no Content-Length) is counted as it arrives.
    chunk = b"y" * 600
    chunked = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n"
    data = await send_raw(
        port, b"POST /dev/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    )
    assert status_of(data) == 503


async def test_the_budget_is_given_back_after_each_request(port: int) -> None:
    for _ in range(5):  # each body alone takes 80 % of the budget: only a leak would refuse one
        data = await send_raw(
            port,
            b"POST /dev/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 800\r\n\r\n"
            + b"z" * 800,
        )
        assert status_of(data) == 200


# -- memory, measured on a real gateway process -------------------------------------------------

GATEWAY_YAML = """\
portway: 1
apis:
  - name: api
    type: rest
    routes:
      POST /echo:
        mock: {status: 200, body: '{"ok":true}'}
"""


async def post_big(port: int, path: str, size: int) -> int:
    """POST ``size`` bytes to ``path`` the way a plain client does (no Expect); return the status,
    or 0 if the server closed before answering."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), size))
        block = b"b" * (256 * 1024)
        sent = 0
        while sent < size:
            writer.write(block[: size - sent])
            sent += min(len(block), size - sent)
            await writer.drain()
        line = await reader.readline()
        return int(line.split()[1]) if line else 0
    except ConnectionError:
        return 0
    finally:
        writer.close()


async def peak_rss_during(pid: int, load: asyncio.Future[list[int]]) -> int:
    peak = rss_bytes(pid)
    while not load.done():
        peak = max(peak, rss_bytes(pid))
        await asyncio.sleep(0.02)
    return max(peak, rss_bytes(pid))


@pytest.mark.slow
async def test_many_large_bodies_to_unknown_paths_leave_rss_low(tmp_path: Path) -> None:
    config = tmp_path / "portway.yaml"
    config.write_text(GATEWAY_YAML)
    async with gateway_process(config, "--max-body-bytes-in-flight", str(64 * MB)) as gateway:
        pid = gateway.proc.pid
        async with asyncio.timeout(60):
            before = rss_bytes(pid)
            load = asyncio.ensure_future(
                asyncio.gather(*(post_big(gateway.port, "/dev/nowhere", 10 * MB - 1) for _ in range(40)))
            )
            peak_unknown = await peak_rss_during(pid, load)
            statuses = load.result()
            # Known route: bodies are read, but never more than the budget at once (others 503).
            load = asyncio.ensure_future(
                asyncio.gather(*(post_big(gateway.port, "/dev/echo", 10 * MB - 1) for _ in range(20)))
            )
            peak_known = await peak_rss_during(pid, load)
            known = load.result()
            # Memory returns: poll (bounded) until RSS is back near where it started.
            deadline = time.monotonic() + 10
            after = rss_bytes(pid)
            while after > before + 40 * MB and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                after = rss_bytes(pid)
    print(
        f"RSS MB: before {before / MB:.0f}, peak 40x10MB unknown path {peak_unknown / MB:.0f}, "
        f"peak 20x10MB routed {peak_known / MB:.0f}, after {after / MB:.0f}; routed statuses {sorted(known)}"
    )
    assert set(statuses) <= {403, 0} and 403 in statuses
    assert peak_unknown - before < 40 * MB  # 400 MB of bodies were sent; next to none was kept
    assert 200 in known and set(known) <= {200, 503, 0}
    assert peak_known - before < 64 * MB + 80 * MB  # the budget plus copies in flight
    assert after - before < 40 * MB

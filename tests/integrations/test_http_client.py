"""The lean backend client (routes/integrations/http_client.py) against scripted TCP/TLS servers.

Every server here is an ``asyncio`` server on 127.0.0.1 port 0 whose per-connection coroutine
writes exactly the bytes a test needs (framings, broken responses, closes at chosen moments).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from routes.integrations.http import HttpProxyIntegration
from routes.integrations.http_client import (
    BackendConnectError,
    BackendDisconnected,
    BackendProtocolError,
    HttpClientPool,
    Origin,
    ResponseTooLarge,
    close_default_pool,
    default_pool,
    split_url,
)
from server.errors import IntegrationFailure
from tests.integrations.test_http_proxy import make_config, make_info
from tests.tls import self_signed_certificate

Handler = Callable[["Backend", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One request (head, body) from ``reader``; ``None`` on a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return head, body


class Backend:
    """A scripted server: ``handler(backend, reader, writer, connection_index)`` per connection."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> Backend:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:  # handlers see EOF now; let them finish (bounded)
            await asyncio.wait(self._tasks, timeout=5)
        await self._server.wait_closed()

    @property
    def origin(self) -> Origin:
        scheme = "https" if self.tls else "http"
        return split_url(f"{scheme}://127.0.0.1:{self.port}/")[0]

    async def next_request(self, reader: asyncio.StreamReader) -> bytes | None:
        request = await read_request(reader)
        if request is None:
            return None
        self.requests.append(request[0])
        self.bodies.append(request[1])
        return request[0]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(self, reader, writer, index)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


def keep_alive(*replies: bytes) -> Handler:
    """Answer request i of every connection with ``replies[i % len]``, keeping it open."""

    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        n = 0
        while await backend.next_request(reader) is not None:
            writer.write(replies[n % len(replies)])
            await writer.drain()
            n += 1

    return handler


def once(reply: bytes) -> Handler:
    """Read one request, write ``reply``, close."""

    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        await backend.next_request(reader)
        writer.write(reply)
        await writer.drain()

    return handler


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
GZ_1001 = gzip.compress(b"x" * 1001)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port with nothing listening (bound, never listen()ed)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
async def pool() -> AsyncIterator[HttpClientPool]:
    client = HttpClientPool()
    yield client
    await client.close()


async def get(
    pool: HttpClientPool, backend: Backend, method: str = "GET", body: bytes = b"", *, time_limit: float = 5.0
) -> tuple[int, list[tuple[str, str]], bytes]:
    return await pool.request(backend.origin, method, "/x", [("X-Test", "1")], body, time_limit)


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (bounded, 2 s) for an event-driven condition, e.g. a close to be noticed."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


# -- framing -------------------------------------------------------------------------------------


async def test_request_bytes_on_the_wire(pool: HttpClientPool) -> None:
    async with Backend(keep_alive(OK, OK, OK)) as backend:
        await get(pool, backend)
        await get(pool, backend, "POST")
        await get(pool, backend, "PUT", b"data")
    origin = f"127.0.0.1:{backend.port}"
    assert backend.requests == [
        f"GET /x HTTP/1.1\r\nHost: {origin}\r\nX-Test: 1\r\n\r\n".encode(),
        f"POST /x HTTP/1.1\r\nHost: {origin}\r\nX-Test: 1\r\nContent-Length: 0\r\n\r\n".encode(),
        f"PUT /x HTTP/1.1\r\nHost: {origin}\r\nX-Test: 1\r\nContent-Length: 4\r\n\r\n".encode(),
    ]
    assert backend.bodies == [b"", b"", b"data"]


async def test_content_length_body(pool: HttpClientPool) -> None:
    async with Backend(
        keep_alive(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello")
    ) as backend:
        assert await get(pool, backend) == (201, [("Content-Length", "5"), ("X-A", "1")], b"hello")


async def test_chunked_body_in_pieces(pool: HttpClientPool) -> None:
    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        await backend.next_request(reader)
        for piece in (
            b"HTTP/1.1 200 OK\r\nTransfer-",
            b"Encoding: chunked\r\n\r\n3\r\nab",
            b"c\r\n",
            b"2\r\nde\r\n0\r\n\r\n",
        ):
            writer.write(piece)
            await writer.drain()
        await reader.read()  # keep the connection open until the client closes it

    async with Backend(handler) as backend:
        status, headers, body = await get(pool, backend)
    assert (status, body) == (200, b"abcde")
    assert headers == [("Transfer-Encoding", "chunked")]


async def test_chunked_trailers_are_not_headers(pool: HttpClientPool) -> None:
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nSet-Cookie: t=1\r\n\r\n"
    async with Backend(keep_alive(reply, OK)) as backend:
        assert await get(pool, backend) == (200, [("Transfer-Encoding", "chunked")], b"ab")
        assert await get(pool, backend) == (200, [("Content-Length", "2")], b"ok")
    assert backend.connections == 1


async def test_body_delimited_by_close(pool: HttpClientPool) -> None:
    reply = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 100_000
    async with Backend(once(reply)) as backend:
        status, _, body = await get(pool, backend)
        assert (status, body) == (200, b"x" * 100_000)
        await eventually(lambda: pool.connection_count == 0)


@pytest.mark.parametrize("code", [204, 304])
async def test_no_body_statuses_and_reuse(pool: HttpClientPool, code: int) -> None:
    reply = f"HTTP/1.1 {code} X\r\nETag: e\r\n\r\n".encode()
    async with Backend(keep_alive(reply, OK)) as backend:
        assert (await get(pool, backend))[::2] == (code, b"")
        assert (await get(pool, backend))[::2] == (200, b"ok")
    assert backend.connections == 1


async def test_head_response_has_no_body_and_connection_is_reused(pool: HttpClientPool) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n"
    async with Backend(keep_alive(head, OK)) as backend:
        status, headers, body = await get(pool, backend, "HEAD")
        assert (status, body) == (200, b"")
        assert ("Content-Length", "1000") in headers
        assert await get(pool, backend) == (200, [("Content-Length", "2")], b"ok")
    assert backend.connections == 1


async def test_interim_responses_are_skipped(pool: HttpClientPool) -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK
    async with Backend(keep_alive(reply)) as backend:
        assert await get(pool, backend) == (200, [("Content-Length", "2")], b"ok")


async def test_header_values_utf8_else_latin1_and_trimmed(pool: HttpClientPool) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nX-U: caf\xc3\xa9\r\nX-L: caf\xe9\r\nX-S: \t a b \t\r\nContent-Length: 0\r\n\r\n"
    )
    async with Backend(keep_alive(reply)) as backend:
        _, headers, _ = await get(pool, backend)
    assert headers[:3] == [("X-U", "caf\u00e9"), ("X-L", "caf\u00e9"), ("X-S", "a b")]


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
        ("identity", lambda data: data),
        ("x-unknown", lambda data: data),
    ],
)
async def test_content_encodings_decoded(
    pool: HttpClientPool, coding: str, encode: Callable[[bytes], bytes]
) -> None:
    data = encode(b"plain " * 100)
    reply = f"HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
    async with Backend(keep_alive(reply + data)) as backend:
        status, headers, body = await get(pool, backend)
    assert body == b"plain " * 100
    assert ("Content-Encoding", coding) in headers  # the integration decides what to drop


# -- connections ---------------------------------------------------------------------------------


async def test_keep_alive_connection_reused(pool: HttpClientPool) -> None:
    async with Backend(keep_alive(OK)) as backend:
        for _ in range(5):
            assert (await get(pool, backend))[2] == b"ok"
        assert backend.connections == 1
        assert pool.idle_count(backend.origin) == 1


async def test_concurrent_requests_open_connections_and_idle_ones_are_bounded() -> None:
    client = HttpClientPool(max_idle_per_host=2)
    release = asyncio.Event()

    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        while await backend.next_request(reader) is not None:
            await release.wait()
            writer.write(OK)
            await writer.drain()

    try:
        async with Backend(handler) as backend:
            tasks = [asyncio.create_task(get(client, backend)) for _ in range(5)]
            await eventually(lambda: len(backend.requests) == 5)
            release.set()
            assert [(await task)[2] for task in tasks] == [b"ok"] * 5
            assert backend.connections == 5
            assert client.idle_count() == 2
            await eventually(lambda: client.connection_count == 2)
    finally:
        await client.close()


async def test_connection_close_is_honoured(pool: HttpClientPool) -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with Backend(keep_alive(reply)) as backend:
        assert (await get(pool, backend))[2] == b"ok"
        assert (await get(pool, backend))[2] == b"ok"
        assert backend.connections == 2
        assert pool.idle_count() == 0


async def test_idle_connection_closed_by_server_is_dropped(pool: HttpClientPool) -> None:
    async with Backend(once(OK)) as backend:
        await get(pool, backend)
        await eventually(lambda: pool.connection_count == 0)
        assert pool.idle_count() == 0
        assert (await get(pool, backend))[2] == b"ok"
        assert backend.connections == 2


async def test_expired_idle_connection_is_not_reused() -> None:
    client = HttpClientPool(idle_timeout=-1.0)  # every idle connection is already too old
    try:
        async with Backend(keep_alive(OK)) as backend:
            await get(client, backend)
            await get(client, backend)
            assert backend.connections == 2
    finally:
        await client.close()


async def test_idle_connections_closed_after_idle_timeout() -> None:
    client = HttpClientPool(idle_timeout=0.05)
    try:
        async with Backend(keep_alive(OK)) as backend:
            await asyncio.gather(get(client, backend), get(client, backend))
            assert client.idle_count() == 2
            await eventually(lambda: client.connection_count == 0)
            assert client.idle_count() == 0
            await get(client, backend)  # and the pool still works
    finally:
        await client.close()


def stale_on_second_request(reply_on_stale: bytes = b"") -> Handler:
    """Connection 0 answers once, then (as if its keep-alive had just expired) closes on the next
    request after writing ``reply_on_stale``; later connections answer normally."""

    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        n = 0
        while await backend.next_request(reader) is not None:
            if index == 0 and n == 1:
                writer.write(reply_on_stale)
                await writer.drain()
                return
            writer.write(OK)
            await writer.drain()
            n += 1

    return handler


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
async def test_stale_pooled_connection_retried_once_for_idempotent_methods(
    pool: HttpClientPool, method: str
) -> None:
    async with Backend(stale_on_second_request()) as backend:
        await get(pool, backend)
        status, _, _ = await get(pool, backend, method)
        assert status == 200
        assert backend.connections == 2
        assert len(backend.requests) == 3  # the first try reached the server, then the retry


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_stale_connection_not_retried_for_other_methods(pool: HttpClientPool, method: str) -> None:
    async with Backend(stale_on_second_request()) as backend:
        await get(pool, backend)
        with pytest.raises(BackendDisconnected) as info:
            await get(pool, backend, method, b"{}")
        assert info.value.nothing_received
        assert backend.connections == 1


async def test_no_retry_once_part_of_the_response_arrived(pool: HttpClientPool) -> None:
    async with Backend(stale_on_second_request(b"HTTP/1.1 200 OK\r\n")) as backend:
        await get(pool, backend)
        with pytest.raises(BackendDisconnected) as info:
            await get(pool, backend)
        assert not info.value.nothing_received
        assert backend.connections == 1


async def test_no_retry_after_an_interim_response(pool: HttpClientPool) -> None:
    async with Backend(stale_on_second_request(b"HTTP/1.1 100 Continue\r\n\r\n")) as backend:
        await get(pool, backend)
        with pytest.raises(BackendDisconnected):
            await get(pool, backend)
        assert backend.connections == 1


async def test_fresh_connection_closed_without_reply_is_not_retried(pool: HttpClientPool) -> None:
    async with Backend(once(b"")) as backend:
        with pytest.raises(BackendDisconnected):
            await get(pool, backend)
        assert backend.connections == 1


async def test_backend_closing_mid_body(pool: HttpClientPool) -> None:
    async with Backend(once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc")) as backend:
        with pytest.raises(BackendDisconnected, match="mid-response"):
            await get(pool, backend)
    assert pool.connection_count == 0


async def test_unsolicited_bytes_drop_an_idle_connection(pool: HttpClientPool) -> None:
    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        await backend.next_request(reader)
        writer.write(OK)
        await writer.drain()
        writer.write(OK)  # a second response nobody asked for
        await writer.drain()
        await reader.read()

    async with Backend(handler) as backend:
        assert (await get(pool, backend))[2] == b"ok"
        await eventually(lambda: pool.connection_count == 0)


# -- bounds and failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001, id="content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" + b"x" * 1001, id="chunked"
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1001, id="until-close"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
            % (len(GZ_1001), GZ_1001),
            id="decoded",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Big: " + b"y" * 3000, id="head"),
    ],
)
async def test_oversized_responses(reply: bytes) -> None:
    client = HttpClientPool(max_body_bytes=1000, max_head_bytes=2000)

    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        await backend.next_request(reader)
        writer.write(reply)
        await writer.drain()
        await reader.read()

    try:
        async with Backend(handler) as backend:
            with pytest.raises(ResponseTooLarge):
                await get(client, backend)
            assert client.connection_count == 0
            # Exactly at the bound is fine.
            backend.handler = once(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000)
            assert len((await get(client, backend))[2]) == 1000
    finally:
        await client.close()


async def test_oversized_response_is_a_502_through_the_integration() -> None:
    client = HttpClientPool(max_body_bytes=10)
    try:
        async with Backend(once(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n" + b"x" * 11)) as backend:
            integration = HttpProxyIntegration(
                make_config(f"http://127.0.0.1:{backend.port}/"), None, client=client
            )
            with pytest.raises(IntegrationFailure) as info:
                await integration.invoke(make_info())
    finally:
        await client.close()
    assert isinstance(info.value.__cause__, ResponseTooLarge)


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nnot-z",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    ],
    ids=["bad-gzip", "upgrade", "two-content-lengths"],
)
async def test_invalid_responses(pool: HttpClientPool, reply: bytes) -> None:
    async with Backend(keep_alive(reply)) as backend:
        with pytest.raises(BackendProtocolError):
            await get(pool, backend)
        await eventually(lambda: pool.connection_count == 0)


async def test_timeout_covers_the_whole_exchange_and_drops_the_connection(pool: HttpClientPool) -> None:
    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        await backend.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()  # never finishes the body

    async with Backend(handler) as backend:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await get(pool, backend, time_limit=0.2)
        assert 0.19 <= time.monotonic() - started < 0.7
        await eventually(lambda: pool.connection_count == 0)


async def test_connect_refused(pool: HttpClientPool, closed_port: int) -> None:
    origin = split_url(f"http://127.0.0.1:{closed_port}/")[0]
    with pytest.raises(BackendConnectError) as info:
        await pool.request(origin, "GET", "/", [], b"", 5.0)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_cancelled_request_drops_its_connection(pool: HttpClientPool) -> None:
    async def handler(
        backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int
    ) -> None:
        await backend.next_request(reader)
        await reader.read()

    async with Backend(handler) as backend:
        task = asyncio.create_task(get(pool, backend))
        await eventually(lambda: len(backend.requests) == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: pool.connection_count == 0)


@pytest.mark.parametrize(
    ("name", "value"), [("X-Evil", "a\r\nInjected: 1"), ("X-Evil\r\nInjected", "1"), ("X-Evil", "a\nb")]
)
async def test_line_breaks_in_headers_are_refused(pool: HttpClientPool, name: str, value: str) -> None:
    origin = split_url("http://127.0.0.1:9/")[0]  # refused before any connection is made
    with pytest.raises(ValueError, match="CR or LF"):
        await pool.request(origin, "GET", "/", [(name, value)], b"", 5.0)
    assert pool.connection_count == 0


async def test_closed_pool_closes_connections_and_refuses_requests() -> None:
    client = HttpClientPool()
    async with Backend(keep_alive(OK)) as backend:
        await get(client, backend)
        assert client.connection_count == 1
        await client.close()
        assert client.connection_count == 0
        with pytest.raises(BackendConnectError, match="closed"):
            await get(client, backend)


async def test_default_pool_is_per_loop_and_replaced_after_close() -> None:
    first = default_pool()
    assert default_pool() is first
    await close_default_pool()
    assert first.closed
    second = default_pool()
    assert second is not first
    await close_default_pool()


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


async def test_tls_backend(certificate: tuple[Path, Path], server_tls: ssl.SSLContext) -> None:
    client = HttpClientPool(ssl_context=ssl.create_default_context(cafile=str(certificate[0])))
    try:
        async with Backend(keep_alive(OK), tls=server_tls) as backend:
            for _ in range(3):
                assert await get(client, backend) == (200, [("Content-Length", "2")], b"ok")
            assert backend.connections == 1
            assert backend.requests[0].startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:")
            # Through the integration, with the pool given to it.
            integration = HttpProxyIntegration(
                make_config(f"https://127.0.0.1:{backend.port}/{{proxy}}"), None, client=client
            )
            response = await integration.invoke(make_info(path_parameters={"proxy": "p"}))
            assert (response.status, response.body) == (200, b"ok")
            assert backend.requests[-1].startswith(b"GET /p HTTP/1.1\r\n")
    finally:
        await client.close()


async def test_tls_backend_with_untrusted_certificate_is_a_connect_error(
    pool: HttpClientPool, server_tls: ssl.SSLContext
) -> None:
    async with Backend(keep_alive(OK), tls=server_tls) as backend:
        with pytest.raises(BackendConnectError) as info:
            await get(pool, backend)  # the default context does not trust the test certificate
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


# -- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base", "host_header", "target"),
    [
        ("http://h/a/b?x=1", "http://h", "h", "/a/b?x=1"),
        ("http://h", "http://h", "h", "/"),
        ("http://h?x", "http://h", "h", "/?x"),
        ("http://h:8080/a?", "http://h:8080", "h:8080", "/a"),
        ("https://API.Example.COM:443/x", "https://API.Example.COM", "API.Example.COM", "/x"),
        ("http://[::1]:8080/x", "http://[::1]:8080", "[::1]:8080", "/x"),
        ("HTTP://h/%zz//a/../b", "http://h", "h", "/%zz//a/../b"),
    ],
)
def test_split_url(url: str, base: str, host_header: str, target: str) -> None:
    origin, got_target = split_url(url)
    assert (origin.base, origin.host_header, got_target) == (base, host_header, target)


def test_split_url_pool_key_ignores_host_case_and_default_port() -> None:
    assert split_url("http://H:80/")[0].pool_key == split_url("http://h/")[0].pool_key
    assert split_url("https://h/")[0].pool_key != split_url("http://h:443/")[0].pool_key


@pytest.mark.parametrize(
    "url", ["not a url", "ftp://h/x", "http://h:abc/x", "http://[::1/x", "http:///x", "http://exa%20mple/x"]
)
def test_split_url_invalid(url: str) -> None:
    with pytest.raises(ValueError):
        split_url(url)


async def test_credentials_in_url_become_basic_auth(pool: HttpClientPool) -> None:
    async with Backend(keep_alive(OK)) as backend:
        origin = split_url(f"http://user:p%40ss@127.0.0.1:{backend.port}/")[0]
        await pool.request(origin, "GET", "/", [], b"", 5.0)
    assert b"\r\nAuthorization: Basic dXNlcjpwQHNz\r\n" in backend.requests[0]

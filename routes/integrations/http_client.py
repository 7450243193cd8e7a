"""A lean HTTP/1.1 client for HTTP and HTTP_PROXY integration backends.

Why not ``aiohttp.ClientSession``: on the gateway's hot path its request machinery (URL handling,
header merging, timers, the streaming response object) cost about twice the CPU of everything
else the integration does. This client does only what a gateway needs:

* a per-process pool (:class:`HttpClientPool`, one per event loop) of keep-alive connections per
  origin (scheme, host, port), on plain ``asyncio.Protocol`` objects; LIFO reuse, at most
  ``max_idle_per_host`` idle connections per origin, idle ones unused for ``idle_timeout`` seconds
  closed (by a timer that runs only while connections are idle, and when next looked at);
* one request at a time per connection, serialised by hand (``Host`` first, then the caller's
  headers in order, ``Content-Length`` when there is a body or the method normally has one);
* responses parsed by llhttp (the ``httptools`` bindings): ``Content-Length``, chunked and
  read-until-close bodies; ``HEAD``, 1xx, 204 and 304 responses without a body; interim 1xx
  responses skipped; ``Connection: close`` (and HTTP/1.0) honoured;
* bounds: at most ``max_head_bytes`` of status line and headers and ``max_body_bytes`` of body
  (also after decompression), else :class:`ResponseTooLarge`;
* ``gzip``/``deflate`` bodies decoded (``br``/``zstd`` too when their modules are installed), as
  aiohttp's ``auto_decompress`` did; other codings are returned as received;
* TLS for ``https`` origins (certificates verified with the pool's ``ssl.SSLContext``);
* one total deadline per request, connecting included (``TimeoutError``);
* failures as :class:`BackendError` subclasses: :class:`BackendConnectError` (refused, DNS, TLS),
  :class:`BackendDisconnected` (closed or reset before the response was complete),
  :class:`BackendProtocolError` (not a valid HTTP/1.x response);
* a pooled connection the server closed while idle is retried once on a new connection, only
  when nothing of the response was received and the method is idempotent.

Header values are decoded as UTF-8 when valid, else as Latin-1 (so any value is writable back as
UTF-8); request heads are encoded as UTF-8 with ``surrogateescape`` (the aiohttp server's decoding
of a client's header bytes round-trips exactly).
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import Iterable
from typing import Final, cast

from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade, HttpResponseParser

from routes.integrations.http_wire import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEAD_BYTES,
    DEFAULT_MAX_IDLE_PER_HOST,
    IDEMPOTENT,
    BackendConnectError,
    BackendDisconnected,
    BackendError,
    BackendProtocolError,
    Origin,
    RawResponse,
    ResponseTooLarge,
    decode_body,
    serialize_head,
    split_url,
)

__all__ = [
    "BackendConnectError",
    "BackendDisconnected",
    "BackendError",
    "BackendProtocolError",
    "HttpClientPool",
    "Origin",
    "RawResponse",
    "ResponseTooLarge",
    "close_default_pool",
    "default_pool",
    "split_url",
]

_IDLE: Final = 0  # in the pool, or between being taken and sending
_HEAD: Final = 1  # request sent, waiting for the status line and headers
_BODY: Final = 2  # headers received, reading the body


def header_value(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request is sent, its response parsed into a future."""

    __slots__ = (
        "_body",
        "_body_size",
        "_coding",
        "_head_only",
        "_headers",
        "_interim",
        "_new_parser",
        "_parser",
        "_pool",
        "_received",
        "_state",
        "_status",
        "closed",
        "key",
        "last_used",
        "lost",
        "transport",
        "waiter",
    )

    def __init__(self, pool: HttpClientPool, key: str) -> None:
        self._pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self._parser = HttpResponseParser(self)
        self.waiter: asyncio.Future[RawResponse] | None = None
        self.closed = False
        self.lost: asyncio.Future[None] = pool.loop.create_future()
        self.last_used = 0.0
        self._state = _IDLE
        self._head_only = False
        self._new_parser = False
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._coding = ""
        self._interim = False
        self._received = 0

    # -- the exchange (called by the pool) --

    def send(self, head: bytes, body: bytes, head_only: bool) -> asyncio.Future[RawResponse]:
        transport = self.transport
        assert transport is not None and self.waiter is None
        waiter: asyncio.Future[RawResponse] = self._pool.loop.create_future()
        self.waiter = waiter
        self._head_only = head_only
        self._state = _HEAD
        try:
            if not body:
                transport.write(head)
            elif len(body) <= 65536:
                transport.write(head + body)
            else:
                transport.writelines((head, body))
        except (RuntimeError, OSError) as exc:  # the transport closed under us
            error = BackendDisconnected(f"cannot send: {exc}", nothing_received=True)
            error.__cause__ = exc
            self.fail(error)
        return waiter

    def fail(self, exc: BaseException) -> None:
        """End the exchange with ``exc`` (if still pending) and drop the connection."""
        waiter = self.waiter
        self.waiter = None
        self._state = _IDLE
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self._pool._forget(self)
            if self.transport is not None:
                self.transport.abort()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._pool._forget(self)
            if self.transport is not None:
                self.transport.close()

    def _complete(self, keep_alive: bool) -> None:
        waiter = self.waiter
        self.waiter = None
        self._state = _IDLE
        body = b"".join(self._body)
        result: RawResponse = (self._status, self._headers, body)
        coding = self._coding
        self._reset()
        if waiter is None or waiter.done():
            self.abort()  # abandoned (timed out or cancelled): the connection state is unknown
            return
        if coding:
            try:
                result = (result[0], result[1], decode_body(coding, body, self._pool.max_body_bytes))
            except BackendError as exc:
                waiter.set_exception(exc)
                keep_alive = False
            else:
                waiter.set_result(result)
        else:
            waiter.set_result(result)
        if keep_alive and not self.closed:
            self._pool._release(self)
        else:
            self.close()

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._state == _IDLE:
            # Bytes nobody asked for (or after an abandoned exchange): the stream is unusable.
            self.abort()
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, BackendError):
                self.fail(cause)
            else:
                self.fail(BackendProtocolError(f"invalid response: {exc}"))
            return
        except (HttpParserError, HttpParserUpgrade) as exc:
            self.fail(BackendProtocolError(f"invalid response: {type(exc).__name__} {exc}"))
            return
        if self._new_parser:
            # A response to HEAD ended at its headers; llhttp (which does not know the request
            # method) would wait for the body its Content-Length announces.
            self._new_parser = False
            self._parser = HttpResponseParser(self)
        if self._state == _HEAD and self._received > self._pool.max_head_bytes:
            self.fail(ResponseTooLarge(f"response head over {self._pool.max_head_bytes} bytes"))

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost decides what the EOF means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool._forget(self)
        if not self.lost.done():
            self.lost.set_result(None)
        if self.waiter is None or self.waiter.done():
            self.waiter = None
            return
        if self._state == _BODY and exc is None and self._delimited_by_close():
            self._complete(keep_alive=False)
            return
        if self._received == 0:
            error = BackendDisconnected(
                "connection closed before any response" + (f": {exc}" if exc else ""), nothing_received=True
            )
        else:
            error = BackendDisconnected(
                "connection closed mid-response" + (f": {exc}" if exc else ""), nothing_received=False
            )
        if exc is not None:
            error.__cause__ = exc
        self.fail(error)

    def _delimited_by_close(self) -> bool:
        # RFC 9112 §6.3: no Content-Length and no final chunked coding -> the body ends with the
        # connection. (Only asked when the connection closed mid-body; llhttp tracks the rest.)
        for name, value in self._headers:
            lname = name.lower()
            if lname == "content-length":
                return False
            if lname == "transfer-encoding" and value.rsplit(",", 1)[-1].strip().lower() == "chunked":
                return False
        return True

    # -- httptools callbacks --

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._state != _HEAD:
            return  # trailers of a chunked body (not passed on), or bytes nobody asked for
        if len(name) == 16 and name.lower() == b"content-encoding":
            self._coding = value.decode("latin-1")
        # llhttp drops the whitespace before a value, not after it (RFC 9110 §5.5: not part of it).
        self._headers.append((name.decode("latin-1"), header_value(value.rstrip(b" \t"))))

    def on_headers_complete(self) -> None:
        if self._state != _HEAD:
            raise BackendProtocolError("unexpected response")
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:  # requests never ask for an upgrade
                raise BackendProtocolError("unexpected 101 Switching Protocols")
            self._interim = True  # 100 Continue, 103 Early Hints...: the real response follows
            return
        self._status = status
        self._state = _BODY
        if self._head_only:
            self._new_parser = True
            self._complete(self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self._state != _BODY:
            return  # the body llhttp thinks a HEAD response has
        size = self._body_size + len(body)
        if size > self._pool.max_body_bytes:
            raise ResponseTooLarge(f"response body over {self._pool.max_body_bytes} bytes")
        self._body_size = size
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._headers = []
            self._coding = ""
            return
        if self._state == _BODY:
            self._complete(self._parser.should_keep_alive())


# -- the pool ------------------------------------------------------------------------------------


class HttpClientPool:
    """Keep-alive connections per origin, for one event loop (bound on first use).

    ``ssl_context`` verifies https backends (default: ``ssl.create_default_context()``).
    ``await close()`` closes every connection; the pool cannot be used afterwards.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_per_host: int = DEFAULT_MAX_IDLE_PER_HOST,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
    ) -> None:
        self._ssl_context = ssl_context
        self.max_idle_per_host = max_idle_per_host
        self.idle_timeout = idle_timeout
        self.max_body_bytes = max_body_bytes
        self.max_head_bytes = max_head_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[str, list[_Connection]] = {}
        self._connections: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def idle_count(self, origin: Origin | None = None) -> int:
        """Idle pooled connections (to ``origin``, or in all)."""
        if origin is not None:
            return len(self._idle.get(origin.pool_key, ()))
        return sum(len(stack) for stack in self._idle.values())

    @property
    def connection_count(self) -> int:
        """Open connections, idle or busy."""
        return len(self._connections)

    async def request(
        self,
        origin: Origin,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        time_limit: float,
    ) -> RawResponse:
        """Send one request and read the whole response: ``(status, headers, body)``.

        ``headers`` must not contain ``Host``, ``Content-Length`` or ``Transfer-Encoding`` (the
        client writes the first two itself). Raises ``TimeoutError`` once ``time_limit`` seconds
        have passed (connecting included), a :class:`BackendError` on failure, ``ValueError``
        for a header with CR or LF.
        """
        if self.closed:
            raise BackendConnectError("the HTTP client pool is closed")
        loop = self.loop
        now = loop.time()
        deadline = now + time_limit
        head = serialize_head(method, target, origin, headers, body)
        head_only = method == "HEAD"
        conn = self._take_idle(origin.pool_key, now)
        retry = method in IDEMPOTENT and conn is not None
        if conn is None:
            conn = await self._connect(origin, deadline)
        while True:
            waiter = conn.send(head, body, head_only)
            timer = loop.call_at(deadline, _expire, conn, waiter)
            try:
                return await waiter
            except BackendDisconnected as exc:
                if not (retry and exc.nothing_received):
                    raise
                # A pooled connection the server had closed: once more on a new one.
                retry = False
            except BaseException:
                if conn.waiter is waiter:  # cancelled mid-exchange
                    conn.fail(BackendDisconnected("request abandoned"))
                raise
            finally:
                timer.cancel()
            conn = await self._connect(origin, deadline)

    async def close(self) -> None:
        """Close every connection (idle ones gracefully); waits at most a second for them."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        connections = list(self._connections)
        stacks = list(self._idle.values())
        self._idle.clear()
        for stack in stacks:
            for conn in stack:
                conn.close()
        for conn in connections:
            if conn.waiter is not None:
                conn.fail(BackendDisconnected("the HTTP client pool was closed"))
            elif not conn.closed:
                conn.close()
        pending = [conn.lost for conn in connections if not conn.lost.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=1.0)
            for conn in connections:
                if conn.lost in late and conn.transport is not None:
                    conn.transport.abort()

    # -- internals --

    def _take_idle(self, key: str, now: float) -> _Connection | None:
        stack = self._idle.get(key)
        while stack:
            conn = stack.pop()
            transport = conn.transport
            if conn.closed or transport is None or transport.is_closing():
                continue
            if now - conn.last_used > self.idle_timeout:
                conn.close()
                continue
            return conn
        return None

    def _release(self, conn: _Connection) -> None:
        if self.closed:
            conn.close()
            return
        stack = self._idle.get(conn.key)
        if stack is None:
            stack = self._idle[conn.key] = []
        if len(stack) >= self.max_idle_per_host:
            conn.close()
            return
        conn.last_used = self.loop.time()
        stack.append(conn)
        if self._sweeper is None and self.idle_timeout > 0:
            self._sweeper = self.loop.call_later(self.idle_timeout, self._sweep)

    def _sweep(self) -> None:
        """Close idle connections unused for ``idle_timeout`` (runs while any are idle)."""
        self._sweeper = None
        expired = self.loop.time() - self.idle_timeout
        for stack in list(self._idle.values()):
            # Oldest first (LIFO reuse keeps the recently used ones at the end).
            while stack and stack[0].last_used <= expired:
                stack.pop(0).close()
        if any(self._idle.values()):
            self._sweeper = self.loop.call_later(self.idle_timeout / 2, self._sweep)

    def _forget(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        stack = self._idle.get(conn.key)
        if stack and conn in stack:
            stack.remove(conn)

    async def _connect(self, origin: Origin, deadline: float) -> _Connection:
        loop = self.loop
        ssl_context: ssl.SSLContext | None = None
        if origin.tls:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            ssl_context = self._ssl_context
        key = origin.pool_key
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, key),
                    origin.host,
                    origin.port,
                    ssl=ssl_context,
                    server_hostname=origin.host if ssl_context is not None else None,
                )
        except TimeoutError:
            raise
        except OSError as exc:  # refused, unreachable, gaierror, ssl.SSLError
            raise BackendConnectError(f"cannot connect to {origin.base}: {exc}") from exc
        if self.closed:
            conn.close()
            raise BackendConnectError("the HTTP client pool is closed")
        self._connections.add(conn)
        return conn


def _expire(conn: _Connection, waiter: asyncio.Future[RawResponse]) -> None:
    if not waiter.done():
        conn.fail(TimeoutError())


# -- the default pool per event loop -------------------------------------------------------------

_default_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HttpClientPool] = (
    weakref.WeakKeyDictionary()
)


def default_pool() -> HttpClientPool:
    """The running loop's shared pool (created on first use; a new one after it was closed)."""
    loop = asyncio.get_running_loop()
    pool = _default_pools.get(loop)
    if pool is None or pool.closed:
        pool = _default_pools[loop] = HttpClientPool()
    return pool


async def close_default_pool() -> None:
    """Close the running loop's shared pool, if it has one (call on app shutdown)."""
    pool = _default_pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()

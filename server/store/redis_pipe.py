"""A pipelined Redis connection for the hot path (hiredis parser, one socket, no pool).

redis.asyncio spends ~30 µs of Python per command (reference: ceilings.md §4); this client
spends a few. Every command issued during one event-loop iteration is queued, and one callback
scheduled with ``loop.call_soon`` writes them all in a single ``transport.write``; Redis
answers in order, so each reply resolves the next waiter's future.

Guarantees, as for the rest of the Redis store:

* every failure reaches its caller as :class:`StoreUnavailable` (connection refused, lost,
  timed out, closed, "cannot serve now" replies) or :class:`StoreError` (other error replies);
* nothing waits forever: connecting (and the handshake) is bounded by ``connect_timeout``, and
  when the oldest unanswered batch is older than ``timeout`` the connection is aborted, which
  fails every call in flight on it;
* nothing needs restarting: a lost connection is replaced by the next call. After a failed
  connect, calls fail at once for ``retry_delay`` seconds (no connect storm while Redis is
  down). A command is never re-sent after it was written (it may have run), except after a
  NOSCRIPT reply (it did not run): scripts are loaded with SCRIPT LOAD, in the same write,
  before their first EVALSHA on each connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio.connection import parse_url

from server.store.base import StoreError, StoreUnavailable
from server.store.lua import Script
from server.store.redis_errors import reply_error

__all__ = ["RedisPipe", "pack"]


def pack(parts: Sequence[bytes]) -> bytes:
    """One command in RESP (an array of bulk strings)."""
    return b"*%d\r\n" % len(parts) + b"".join([b"$%d\r\n%s\r\n" % (len(p), p) for p in parts])


class _Call:
    """A queued or written command; ``future`` None for the pipe's own (SCRIPT LOAD, handshake)."""

    __slots__ = ("future", "payload", "retried", "script")

    def __init__(self, future: asyncio.Future[Any] | None, payload: bytes, script: Script | None) -> None:
        self.future = future
        self.payload = payload
        self.script = script
        self.retried = False


class _Protocol(asyncio.Protocol):
    def __init__(self, pipe: RedisPipe) -> None:
        self.pipe = pipe
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiters: deque[_Call] = deque()
        self.sent = 0  # replies expected in total
        self.received = 0
        self.deadlines: deque[tuple[int, float]] = deque()  # (sent after a batch, its deadline)
        self.timer: asyncio.TimerHandle | None = None
        self.lost = False
        self.loaded: set[str] = set()  # script SHAs loaded on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        resolve = self.pipe._resolve
        waiters = self.waiters
        try:
            while (reply := reader.gets()) is not False:
                self.received += 1
                resolve(self, waiters.popleft(), reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self.abort(exc)
            return
        deadlines = self.deadlines
        while deadlines and deadlines[0][0] <= self.received:
            deadlines.popleft()

    def write(self, calls: list[_Call], timeout: float) -> None:
        assert self.transport is not None
        self.transport.write(b"".join([call.payload for call in calls]))
        self.waiters.extend(calls)
        self.sent += len(calls)
        loop = asyncio.get_running_loop()
        self.deadlines.append((self.sent, loop.time() + timeout))
        if self.timer is None:
            self.timer = loop.call_at(self.deadlines[0][1], self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if not self.deadlines:
            return
        deadline = self.deadlines[0][1]
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            self.abort(TimeoutError("no reply from redis in time"))
        else:
            self.timer = loop.call_at(deadline, self._on_timer)

    def abort(self, exc: BaseException) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.connection_lost(exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.lost:
            return
        self.lost = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        cause = exc if exc is not None else ConnectionError("redis closed the connection")
        waiters, self.waiters = self.waiters, deque()
        for call in waiters:
            _fail(call, cause)
        self.pipe._lost(self)


def _fail(call: _Call, cause: BaseException) -> None:
    future = call.future
    if future is not None and not future.done():
        error = StoreUnavailable(f"redis unavailable: {cause!r}")
        error.__cause__ = cause
        future.set_exception(error)


class RedisPipe:
    """Pipelined commands to the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 1.0,
        connect_timeout: float | None = None,
        retry_delay: float = 0.05,
        client_name: str = "portway-pipe",
    ) -> None:
        options: dict[str, Any] = dict(parse_url(url))
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port: int = options.get("port", 6379)
        self._ssl: ssl.SSLContext | None = None
        if url.lower().startswith("rediss://"):
            self._ssl = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
            if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", "ssl.cert_none"):
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        hello: list[list[bytes]] = []
        if options.get("password") is not None:
            user = options.get("username")
            auth = [options["password"]] if user is None else [user, options["password"]]
            hello.append([b"AUTH", *(str(part).encode() for part in auth)])
        if options.get("db", 0):
            hello.append([b"SELECT", str(options["db"]).encode()])
        hello.append([b"CLIENT", b"SETNAME", client_name.encode()])
        self._hello = [pack(command) for command in hello]
        self._timeout = timeout
        self._connect_timeout = timeout if connect_timeout is None else connect_timeout
        self._retry_delay = retry_delay
        self._queue: list[_Call] = []
        self._scheduled = False
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._down_cause: BaseException | None = None
        self._closed = False

    # -- the hot path --------------------------------------------------------------------------

    def submit(self, payload: bytes, script: Script | None = None) -> asyncio.Future[Any]:
        """Queue one packed command for this loop iteration's write; await the reply."""
        loop = asyncio.get_running_loop()
        if self._closed:
            raise StoreUnavailable("redis store is closed")
        if self._down_cause is not None and loop.time() < self._down_until:
            raise StoreUnavailable(f"redis unavailable: {self._down_cause!r}") from self._down_cause
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Call(future, payload, script))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if not self._queue:
            return
        proto = self._proto
        if proto is None or proto.lost:
            if self._connecting is None and not self._closed:
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            return  # the queue is written once connected, or failed
        calls, self._queue = self._queue, []
        batch: list[_Call] = []
        loaded = proto.loaded
        for call in calls:
            script = call.script
            if script is not None and script.sha not in loaded:
                loaded.add(script.sha)
                batch.append(_Call(None, pack([b"SCRIPT", b"LOAD", script.text.encode()]), script))
            batch.append(call)
        proto.write(batch, self._timeout)

    def _resolve(self, proto: _Protocol, call: _Call, reply: Any) -> None:
        future = call.future
        if isinstance(reply, hiredis.ReplyError):
            message = str(reply)
            if call.script is not None and message.startswith("NOSCRIPT") and not call.retried:
                # The script did not run: load it and send the call again (once).
                proto.loaded.discard(call.script.sha)
                call.retried = True
                self._queue.append(call)
                if not self._scheduled:
                    self._scheduled = True
                    asyncio.get_running_loop().call_soon(self._flush)
                return
            if future is None:
                if call.script is not None:
                    proto.loaded.discard(call.script.sha)
                return
            if not future.done():
                future.set_exception(reply_error(message))
        elif future is not None and not future.done():
            future.set_result(reply)

    # -- connections -----------------------------------------------------------------------------

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        proto: _Protocol | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._path is not None:
                    _, proto = await loop.create_unix_connection(lambda: _Protocol(self), self._path)
                else:
                    _, proto = await loop.create_connection(
                        lambda: _Protocol(self), self._host, self._port, ssl=self._ssl
                    )
                calls = [_Call(loop.create_future(), payload, None) for payload in self._hello]
                proto.write(calls, self._timeout)
                for call in calls:
                    assert call.future is not None
                    await call.future
        except asyncio.CancelledError:
            if proto is not None:
                proto.abort(ConnectionError("redis store is closed"))
            raise
        except (OSError, TimeoutError, StoreError) as exc:
            if proto is not None:
                proto.abort(exc)
            self._down_cause = exc
            self._down_until = loop.time() + self._retry_delay
            queued, self._queue = self._queue, []
            for call in queued:
                _fail(call, exc)
        else:
            self._proto = proto
            self._down_cause = None
            self._flush()
        finally:
            self._connecting = None

    def _lost(self, proto: _Protocol) -> None:
        if self._proto is proto:
            self._proto = None
        if self._queue and not self._scheduled and not self._closed:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def connect(self) -> None:
        """Connect now (the hot path connects lazily); raises :class:`StoreUnavailable`."""
        await self.submit(pack([b"PING"]))

    async def close(self) -> None:
        """Fail queued and in-flight calls, close the socket. Idempotent."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.wait([self._connecting])
        queued, self._queue = self._queue, []
        closed = ConnectionError("redis store is closed")
        for call in queued:
            _fail(call, closed)
        if self._proto is not None:
            self._proto.abort(closed)

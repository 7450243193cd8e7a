"""A low-overhead WebSocket load client: RFC 6455 client frames on a raw asyncio ``Protocol`` (uvloop).

    python bench/clients/ws_load.py echo  --url ws://127.0.0.1:8090/ws --conns 100 --duration 10 \\
        [--warmup 2] [--max-messages N] [--impl raw|aiohttp] [--server-pid PID]
    python bench/clients/ws_load.py hold  --url ws://127.0.0.1:8090/ws --conns 5000 \\
        [--duration 600] [--control]
    python bench/clients/ws_load.py count --url ws://127.0.0.1:8090/ws --conns 5000 --messages 5000 \\
        [--timeout 30]

Modes (every result is one JSON object per line on stdout):

* ``echo``: ``--conns`` connections in a closed loop; each sends one ``--size``-byte JSON text
  message (79 bytes by default, like the reference ceilings) and sends the next as soon as the
  echo arrived. After ``--warmup`` s, it measures for ``--duration`` s or ``--max-messages`` round
  trips, whichever comes first, and reports round trips/s, RTT p50/p99/max, echo mismatches, its
  own CPU and (``--server-pid``) the server's CPU over exactly the measured window.
* ``hold``: opens ``--conns`` idle connections (``--open-concurrency`` handshakes in flight),
  reports the open rate (``ready`` line), answers pings, and counts what it receives until stdin
  closes, ``quit`` is read, or ``--duration`` s passed. With ``--control`` it answers commands on
  stdin, one per line: ``stats`` (received count, first/last receipt as ``time.monotonic()``,
  which is the system-wide CLOCK_MONOTONIC, so comparable across processes), ``reset``, ``quit``.
* ``count``: like ``hold``, but exits once ``--messages`` messages arrived in total (or after
  ``--timeout`` s), reporting the times to the first and last receipt after ``ready``.

``--impl raw`` (default) is a ~150-line client protocol: handshake, unmasked server frames
(fragments, ping -> pong, close), masked client frames. In echo mode each connection sends the same
precomputed frame (one random mask per connection, so no per-message masking cost); servers
unmask every frame the same way whatever the key. ``--impl aiohttp`` (echo only) uses aiohttp's
client instead, to compare what the load tool costs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import uvloop

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_CONNS = 19_000  # ulimit -n is capped at 20,000 on the benchmark machine
MAX_SECONDS = 3600.0


def echo_message(size: int) -> bytes:
    """A JSON text message of exactly ``size`` bytes (79 by default). It has no ``action`` a route
    matches, so Portway selects ``$default``."""
    head = b'{"action":"message","data":"'
    tail = b'"}'
    fill = size - len(head) - len(tail)
    if fill < 0:
        raise ValueError(f"--size must be at least {len(head) + len(tail)}")
    text = b"hello from the websocket benchmark client " * (fill // 42 + 1)
    return head + text[:fill] + tail


def _mask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final, masked client frame (RFC 6455 §5.2)."""
    mask = mask if mask is not None else os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    return header + mask + _mask(payload, mask)


class WSClient(asyncio.Protocol):
    """One client connection. ``on_message(conn, payload)`` is called for every complete data message."""

    __slots__ = (
        "_accept",
        "_buf",
        "_closing",
        "_frag",
        "_request",
        "closed",
        "frame",
        "handshake",
        "lost",
        "on_close",
        "on_message",
        "open",
        "sent_at",
        "transport",
    )

    def __init__(
        self,
        host: str,
        path: str,
        on_message: Callable[[WSClient, bytes], None],
        on_close: Callable[[WSClient], None] | None = None,
    ) -> None:
        key = base64.b64encode(os.urandom(16))
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
            "User-Agent: portway-bench-ws-load\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.on_message = on_message
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._frag: list[bytes] | None = None
        self._closing = False
        self.open = False
        self.closed = False
        self.frame = b""  # echo mode: the precomputed message frame
        self.sent_at = 0.0

    # asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        self.transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.open = False
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)
        if self.on_close is not None:
            self.on_close(self)

    def data_received(self, data: bytes) -> None:
        if self.open:
            self._frames(data)
            return
        buf = self._buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self._buf = buf
            if len(buf) > 65536:
                self._fail(ConnectionError("handshake response too large"))
            return
        head, rest = buf[:end], buf[end + 4 :]
        self._buf = b""
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" " or self._accept not in head:
            self._fail(ConnectionError(f"handshake refused: {head[:200]!r}"))
            return
        self.open = True
        self.handshake.set_result(None)
        if rest:
            self._frames(rest)

    # frames -------------------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _frames(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        while n - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1]
            if length & 0x80:
                self._fail(ConnectionError("masked frame from the server"))
                return
            hdr = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                hdr = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hdr = 10
            end = pos + hdr + length
            if end > n:
                break
            payload = buf[pos + hdr : end]
            pos = end
            opcode = b0 & 0x0F
            if opcode == 1 or opcode == 2:  # the fast path
                if b0 & 0x80:
                    self.on_message(self, payload)
                else:
                    self._frag = [payload]
            elif opcode == 0:
                if self._frag is not None:
                    self._frag.append(payload)
                    if b0 & 0x80:
                        whole, self._frag = b"".join(self._frag), None
                        self.on_message(self, whole)
            elif opcode == 9:
                self.write(client_frame(0xA, payload))
            elif opcode == 8:
                if not self._closing:
                    self._closing = True
                    self.write(client_frame(0x8, payload[:2]))
                if self.transport is not None:
                    self.transport.close()
                self._buf = b""
                return
        self._buf = buf[pos:] if pos < n else b""

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send_text(self, text: bytes) -> None:
        self.write(client_frame(0x1, text))

    def close(self, code: int = 1000) -> None:
        """Send a close frame once; the server answers and closes the TCP connection."""
        if not self._closing and self.open:
            self._closing = True
            self.write(client_frame(0x8, code.to_bytes(2, "big")))


def _ignore(conn: WSClient, payload: bytes) -> None:
    return None


async def open_connections(
    url: str,
    count: int,
    on_message: Callable[[WSClient, bytes], None],
    *,
    concurrency: int = 200,
    handshake_s: float = 10.0,
    on_close: Callable[[WSClient], None] | None = None,
) -> tuple[list[WSClient], int, float]:
    """Open ``count`` connections (at most ``concurrency`` handshakes in flight): (open, failed, seconds)."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ValueError(f"need a ws:// URL, got {url!r}")
    host, port = parts.hostname, parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = f"{host}:{port}"
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    opened: list[WSClient] = []
    failures: list[str] = []

    async def one() -> None:
        async with sem:
            try:
                async with asyncio.timeout(handshake_s):
                    _, conn = await loop.create_connection(
                        lambda: WSClient(host_header, path, on_message, on_close), host, port
                    )
                    await conn.handshake
                opened.append(conn)
            except (OSError, TimeoutError, ConnectionError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.monotonic() - start
    if failures:
        print(f"ws_load: {len(failures)} connections failed, first: {failures[0]}", file=sys.stderr)
    return opened, len(failures), elapsed


async def close_connections(conns: list[WSClient], wait_s: float = 5.0) -> None:
    """Close frames to all, then wait (bounded) for the server to close, then abort the rest."""
    for conn in conns:
        conn.close()
    pending = [c.lost for c in conns if not c.lost.done()]
    if pending:
        await asyncio.wait(pending, timeout=wait_s)
    for conn in conns:
        if not conn.closed and conn.transport is not None:
            conn.transport.abort()


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def proc_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


# echo ----------------------------------------------------------------------------------------------


class EchoState:
    def __init__(self, expected: bytes, max_messages: int) -> None:
        self.expected = expected
        self.max_messages = max_messages
        self.running = True
        self.recording = False
        self.count = 0
        self.mismatches = 0
        self.rtts: list[float] = []
        self.done = asyncio.Event()


async def run_echo_raw(args: argparse.Namespace, message: bytes) -> dict[str, Any]:
    state = EchoState(message, args.max_messages)
    rtts = state.rtts
    clock = time.perf_counter

    def on_message(conn: WSClient, payload: bytes) -> None:
        now = clock()
        if state.recording:
            rtts.append(now - conn.sent_at)
            state.count += 1
            if payload != state.expected:
                state.mismatches += 1
            if state.count >= state.max_messages:
                state.running = False
                state.done.set()
        if state.running:
            conn.sent_at = clock()
            conn.transport.write(conn.frame)  # type: ignore[union-attr]

    conns, failed, open_s = await open_connections(
        args.url, args.conns, on_message, concurrency=args.open_concurrency
    )
    if not conns:
        raise SystemExit("ws_load: no connection could be opened")
    for conn in conns:
        conn.frame = client_frame(0x1, message)
    for conn in conns:
        conn.sent_at = clock()
        conn.transport.write(conn.frame)  # type: ignore[union-attr]
    return await _measure(args, state, conns, failed, open_s)


async def run_echo_aiohttp(args: argparse.Namespace, message: bytes) -> dict[str, Any]:
    import aiohttp

    state = EchoState(message, args.max_messages)
    text = message.decode()
    clock = time.perf_counter

    async def worker(ws: aiohttp.ClientWebSocketResponse) -> None:
        while state.running:
            start = clock()
            await ws.send_str(text)
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return
            if state.recording:
                state.rtts.append(clock() - start)
                state.count += 1
                if msg.data != text:
                    state.mismatches += 1
                if state.count >= state.max_messages:
                    state.running = False
                    state.done.set()

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.monotonic()
        sockets = await asyncio.gather(
            *(session.ws_connect(args.url, autoping=True, max_msg_size=0) for _ in range(args.conns))
        )
        open_s = time.monotonic() - start
        tasks = [asyncio.create_task(worker(ws)) for ws in sockets]
        try:
            return await _measure(args, state, [], 0, open_s)
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await asyncio.gather(*tasks, return_exceptions=True)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def _measure(
    args: argparse.Namespace, state: EchoState, conns: list[WSClient], failed: int, open_s: float
) -> dict[str, Any]:
    if args.warmup > 0:
        await asyncio.sleep(args.warmup)
    server0 = proc_ticks(args.server_pid) if args.server_pid else None
    cpu0 = time.process_time()
    t0 = time.monotonic()
    state.recording = True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.done.wait(), args.duration)
    state.recording = False
    state.running = False
    elapsed = time.monotonic() - t0
    cpu1 = time.process_time()
    server1 = proc_ticks(args.server_pid) if args.server_pid else None
    if conns:
        await asyncio.sleep(0.2)  # let the last echoes in flight land before closing
        await close_connections(conns)
    rtts = sorted(state.rtts)
    result: dict[str, Any] = {
        "event": "result",
        "mode": "echo",
        "impl": args.impl,
        "conns": args.conns,
        "open_failed": failed,
        "open_s": round(open_s, 3),
        "message_bytes": len(state.expected),
        "warmup_s": args.warmup,
        "duration_s": round(elapsed, 3),
        "round_trips": state.count,
        "rps": round(state.count / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(rtts, 50) * 1e3, 3),
        "p99_ms": round(percentile(rtts, 99) * 1e3, 3),
        "max_ms": round(rtts[-1] * 1e3, 3) if rtts else 0.0,
        "mismatches": state.mismatches,
        "client_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1) if elapsed else 0.0,
    }
    if server0 is not None and server1 is not None:
        result["server_cpu_pct"] = round(100 * (server1 - server0) / CLK_TCK / elapsed, 1)
    return result


# hold / count -----------------------------------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.received = 0
        self.bytes = 0
        self.first: float | None = None
        self.last: float | None = None
        self.closed_by_server = 0
        self.target: int | None = None
        self.reached = asyncio.Event()

    def reset(self) -> None:
        self.received = 0
        self.bytes = 0
        self.first = self.last = None
        self.reached.clear()

    def on_message(self, conn: WSClient, payload: bytes) -> None:
        now = time.monotonic()
        self.received += 1
        self.bytes += len(payload)
        if self.first is None:
            self.first = now
        self.last = now
        if self.target is not None and self.received >= self.target:
            self.reached.set()

    def on_close(self, conn: WSClient) -> None:
        self.closed_by_server += 1

    def stats(self, conns: list[WSClient]) -> dict[str, Any]:
        return {
            "event": "stats",
            "received": self.received,
            "bytes": self.bytes,
            "first": self.first,
            "last": self.last,
            "open": sum(1 for c in conns if c.open and not c.closed),
            "now": time.monotonic(),
        }


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run_hold(args: argparse.Namespace) -> dict[str, Any]:
    counter = Counter()
    if args.mode == "count":
        counter.target = args.messages
    conns, failed, open_s = await open_connections(
        args.url, args.conns, counter.on_message, concurrency=args.open_concurrency, on_close=counter.on_close
    )
    ready_at = time.monotonic()
    emit(
        {
            "event": "ready",
            "pid": os.getpid(),
            "open": len(conns),
            "failed": failed,
            "open_s": round(open_s, 3),
            "open_rate": round(len(conns) / open_s, 1) if open_s else 0.0,
        }
    )
    if args.mode == "count":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(counter.reached.wait(), args.timeout)
        result = counter.stats(conns)
        result.update(
            event="result",
            mode="count",
            first_ms=round((counter.first - ready_at) * 1e3, 3) if counter.first else None,
            last_ms=round((counter.last - ready_at) * 1e3, 3) if counter.last else None,
        )
        await close_connections(conns)
        return result

    deadline = time.monotonic() + args.duration
    if args.control:
        reader = await _stdin_lines()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = await asyncio.wait_for(reader.readline(), remaining)
            except TimeoutError:
                break
            command = line.decode().strip()
            if not line or command == "quit":
                break
            if command == "stats":
                emit(counter.stats(conns))
            elif command == "reset":
                counter.reset()
                emit({"event": "reset", "now": time.monotonic()})
            elif command:
                emit({"event": "error", "message": f"unknown command {command!r}"})
    else:
        await asyncio.sleep(args.duration)
    result = counter.stats(conns)
    result.update(event="result", mode="hold", closed_by_server=counter.closed_by_server)
    await close_connections(conns)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default="ws://127.0.0.1:8090/ws")
    common.add_argument("--conns", type=int, default=100)
    common.add_argument("--open-concurrency", type=int, default=200, help="handshakes in flight")
    echo = sub.add_parser("echo", parents=[common], help="closed-loop round trips")
    echo.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    echo.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    echo.add_argument("--max-messages", type=int, default=10_000_000, help="stop after this many")
    echo.add_argument("--size", type=int, default=79, help="message bytes")
    echo.add_argument("--impl", choices=("raw", "aiohttp"), default="raw")
    echo.add_argument("--server-pid", type=int, help="also report this process's CPU %% while measuring")
    hold = sub.add_parser("hold", parents=[common], help="hold idle connections, count receipts")
    hold.add_argument("--duration", type=float, default=600.0, help="hold at most this long")
    hold.add_argument("--control", action="store_true", help="answer stats/reset/quit on stdin")
    count = sub.add_parser("count", parents=[common], help="hold connections until N messages arrived")
    count.add_argument("--messages", type=int, required=True)
    count.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if not 1 <= args.conns <= MAX_CONNS:
        parser.error(f"--conns must be in 1..{MAX_CONNS}")
    for name in ("duration", "warmup", "timeout"):
        value = getattr(args, name, None)
        if value is not None and not 0 <= value <= MAX_SECONDS:
            parser.error(f"--{name} must be in 0..{MAX_SECONDS:.0f}")
    return args


async def amain(args: argparse.Namespace) -> int:
    if args.mode == "echo":
        message = echo_message(args.size)
        if args.impl == "raw":
            result = await run_echo_raw(args, message)
        else:
            result = await run_echo_aiohttp(args, message)
    else:
        result = await run_hold(args)
    emit(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return uvloop.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())

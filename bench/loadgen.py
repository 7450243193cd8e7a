"""A small closed-loop HTTP/1.1 load generator (asyncio + uvloop, raw protocols, keep-alive).

    python bench/loadgen.py http://127.0.0.1:8080/path -c 64 -d 10 [--warmup 2] [--max-requests N] [--json]

Each of the ``-c`` connections keeps exactly one request in flight (closed loop): it writes the
next request as soon as the previous response is complete. The run stops after ``-d`` seconds or
after ``--max-requests`` requests, whichever comes first; responses still in flight then are not
counted. Per-request latency is measured from the write to the last byte of the response.

It is the fallback of ``bench_http.py`` when ``wrk`` is not installed (wrk is written in C and
costs the shared core less). Only what the benchmark needs is supported: GET/POST with a fixed
body, ``Content-Length`` and ``chunked`` responses, plain HTTP.

Output: req/s, p50/p90/p99/max latency in ms, completed requests, errors (connect failures,
resets, malformed responses) and non-2xx responses; ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, cast
from urllib.parse import urlsplit

__all__ = ["LoadResult", "percentile", "run_load"]

_MAX_RECONNECTS = 1000


@dataclass
class LoadResult:
    tool: str
    url: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    non_2xx: int
    capped: bool


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of an ascending list (``q`` in 0..100); 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return float(sorted_values[rank - 1])


class _Stats:
    __slots__ = ("cap", "errors", "latencies_ns", "non_2xx", "recording", "sent", "stopped")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.sent = 0
        self.latencies_ns: list[int] = []
        self.errors = 0
        self.non_2xx = 0
        self.recording = False
        self.stopped = False


class _Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight; parses responses incrementally."""

    def __init__(self, stats: _Stats, request: bytes, idle: asyncio.Event) -> None:
        self._stats = stats
        self._request = request
        self._idle = idle
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._t0 = 0
        self.in_flight = False
        self.lost = False

    # -- asyncio callbacks -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while self.in_flight:
            status = self._parse_one()
            if status == 0:
                return  # incomplete
            self.in_flight = False
            stats = self._stats
            if status < 0:
                stats.errors += 1
                self.close()
                return
            if stats.recording and not stats.stopped:
                stats.latencies_ns.append(time.perf_counter_ns() - self._t0)
                if not 200 <= status < 300:
                    stats.non_2xx += 1
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight and not self._stats.stopped:
            self._stats.errors += 1
        self.in_flight = False
        self.lost = True
        self._idle.set()

    # -- helpers -----------------------------------------------------------------------------------

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _send(self) -> None:
        stats = self._stats
        if stats.stopped or stats.sent >= stats.cap or self._transport is None:
            self._idle.set()
            return
        stats.sent += 1
        self.in_flight = True
        self._t0 = time.perf_counter_ns()
        self._transport.write(self._request)

    def _parse_one(self) -> int:
        """Consume one complete response from the buffer: its status, 0 if incomplete, -1 if bad."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return 0
        head = bytes(buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            return -1
        status = int(parts[1])
        length = -1
        chunked = False
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lname = name.strip().lower()
            if lname == "content-length":
                length = int(value.strip())
            elif lname == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif lname == "connection":
                close = "close" in value.lower()
        start = end + 4
        if chunked:
            consumed = self._chunked_end(start)
            if consumed == 0:
                return 0
            if consumed < 0:
                return -1
            del buf[:consumed]
        else:
            if length < 0:
                length = 0 if status in (204, 304) or 100 <= status < 200 else -1
            if length < 0:
                return -1  # body delimited by close: not supported for keep-alive benchmarking
            if len(buf) < start + length:
                return 0
            del buf[: start + length]
        if close:
            self._stats.errors += 1  # the server will close: count it, reconnect happens on loss
        return status

    def _chunked_end(self, pos: int) -> int:
        buf = self._buf
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return 0
            try:
                size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            except ValueError:
                return -1
            pos = eol + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", pos - 2)
                return 0 if trailer_end < 0 else trailer_end + 4
            if len(buf) < pos + size + 2:
                return 0
            pos += size + 2


def _build_request(url: str, method: str, body: bytes, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit(f"only http:// URLs are supported: {url}")
    host = parts.hostname
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "User-Agent: portway-loadgen"]
    lines += headers
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def run_load(
    url: str,
    *,
    connections: int = 64,
    duration_s: float = 10.0,
    warmup_s: float = 0.0,
    max_requests: int = 5_000_000,
    method: str = "GET",
    body: bytes = b"",
    headers: list[str] | None = None,
) -> LoadResult:
    """Run the closed loop against ``url`` and return the measured window's statistics."""
    host, port, request = _build_request(url, method, body, headers or [])
    loop = asyncio.get_running_loop()
    stats = _Stats(max_requests)
    conns: list[_Connection] = []
    idle_events: list[asyncio.Event] = []

    async def open_one() -> _Connection:
        idle = asyncio.Event()
        _, proto = await loop.create_connection(lambda: _Connection(stats, request, idle), host, port)
        idle_events.append(idle)
        return proto

    results = await asyncio.gather(*(open_one() for _ in range(connections)), return_exceptions=True)
    for res in results:
        if isinstance(res, BaseException):
            stats.errors += 1
        else:
            conns.append(res)
    if not conns:
        raise SystemExit(f"could not connect to {url}: {results[0]!r}")

    if warmup_s > 0:
        await asyncio.sleep(warmup_s)
    stats.latencies_ns.clear()
    stats.errors = stats.non_2xx = 0
    stats.sent = sum(1 for conn in conns if conn.in_flight)  # these complete inside the window
    stats.recording = True
    started = time.perf_counter()
    deadline = started + duration_s
    reconnects = 0
    # Watch for lost connections (reconnect, bounded) and for the end of the window.
    while True:
        now = time.perf_counter()
        if now >= deadline or stats.sent >= max_requests:
            break
        await asyncio.sleep(min(0.05, deadline - now))
        for i, conn in enumerate(conns):
            if conn.lost and reconnects < _MAX_RECONNECTS:
                reconnects += 1
                try:
                    conns[i] = await open_one()
                except OSError:
                    stats.errors += 1
        if stats.sent >= max_requests:
            # Let the last requests finish (bounded), then stop.
            await asyncio.wait_for(_all_idle(idle_events), timeout=max(0.1, deadline - time.perf_counter()))
            break
    elapsed = time.perf_counter() - started
    stats.stopped = True
    for conn in conns:
        conn.close()
    lat = sorted(stats.latencies_ns)
    ms = 1e-6
    return LoadResult(
        tool="loadgen.py",
        url=url,
        connections=connections,
        duration_s=round(elapsed, 3),
        requests=len(lat),
        rps=round(len(lat) / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(percentile(lat, 50) * ms, 3),
        p75_ms=round(percentile(lat, 75) * ms, 3),
        p90_ms=round(percentile(lat, 90) * ms, 3),
        p99_ms=round(percentile(lat, 99) * ms, 3),
        max_ms=round((lat[-1] if lat else 0) * ms, 3),
        errors=stats.errors,
        non_2xx=stats.non_2xx,
        capped=stats.sent >= max_requests,
    )


async def _all_idle(events: list[asyncio.Event]) -> None:
    await asyncio.gather(*(e.wait() for e in events))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="closed-loop HTTP/1.1 load generator")
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=0.0, help="unmeasured seconds first")
    parser.add_argument("--max-requests", type=int, default=5_000_000, help="hard cap on measured requests")
    parser.add_argument("-X", "--method", default="GET")
    parser.add_argument("--body", default="", help="request body (utf-8)")
    parser.add_argument("-H", "--header", action="append", default=[], help="extra 'Name: value' header")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 600:
        parser.error("--duration must be in (0, 600]")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner: Any = asyncio.run
    else:
        runner = uvloop.run
    result: LoadResult = runner(
        run_load(
            args.url,
            connections=args.connections,
            duration_s=args.duration,
            warmup_s=args.warmup,
            max_requests=args.max_requests,
            method=args.method.upper(),
            body=args.body.encode(),
            headers=args.header,
        )
    )
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(
            f"{result.url}: {result.rps:,.0f} req/s over {result.duration_s:.1f}s "
            f"({result.requests} requests, {result.connections} connections)\n"
            f"latency p50 {result.p50_ms:.2f} ms  p90 {result.p90_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
            f"max {result.max_ms:.2f} ms\nerrors {result.errors}  non-2xx {result.non_2xx}"
            + ("  (stopped at --max-requests)" if result.capped else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

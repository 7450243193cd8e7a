"""Plain request and response values passed between the pure core and the aiohttp adapter.

The adapter copies what it needs out of ``aiohttp.web.Request`` into :class:`HttpRequest` once, so
that event building, routing and validation are pure functions of values (and testable without a
server). Pure core: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["HttpRequest", "HttpResponse", "header_get"]


@dataclass(slots=True)  # not frozen: frozen __init__ costs a setattr call per field, per request
class HttpRequest:
    """One client request as received.

    Attributes:
        method: upper-case HTTP method.
        raw_path: the path exactly as sent, still percent-encoded, without the query string.
        query_string: the raw query string (no leading ``?``), still encoded.
        headers: ``(name, value)`` pairs in arrival order, name casing as sent.
        body: the raw body bytes.
        source_ip: the peer address.
        host: the ``Host`` header value (``host:port``) the client used.
        scheme: ``http`` or ``https``.
        content_length: the ``Content-Length`` the client announced, while ``body`` is not read
            yet (routing refuses an oversized body on it); ``None`` when not known.
    """

    method: str
    raw_path: str
    query_string: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str
    host: str
    scheme: str = "http"
    protocol: str = "HTTP/1.1"
    content_length: int | None = None

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), or None."""
        return header_get(self.headers, name)


def header_get(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    lname = name.lower()
    found: str | None = None
    for key, value in headers:
        if key.lower() == lname:
            found = value
    return found


@dataclass(slots=True)
class HttpResponse:
    """A response the gateway will send: status, header pairs (repeats allowed), body bytes."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return header_get(self.headers, name)

    def set_default_header(self, name: str, value: str) -> None:
        if self.header(name) is None:
            self.headers.append((name, value))

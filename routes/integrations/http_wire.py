"""The wire side of the lean HTTP/1.1 client (:mod:`routes.integrations.http_client`): origins
and URL splitting, request heads, response header and body decoding, and the client's errors.

No I/O here: the connection protocol and the pool live in ``http_client``.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterable
from typing import Final

from yarl import URL

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_HEAD_BYTES",
    "DEFAULT_MAX_IDLE_PER_HOST",
    "IDEMPOTENT",
    "NO_BODY_METHODS",
    "BackendConnectError",
    "BackendDisconnected",
    "BackendError",
    "BackendProtocolError",
    "Origin",
    "RawResponse",
    "ResponseTooLarge",
    "decode_body",
    "serialize_head",
    "split_url",
]

DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_HEAD_BYTES: Final = 64 * 1024
DEFAULT_MAX_IDLE_PER_HOST: Final = 256
DEFAULT_IDLE_TIMEOUT: Final = 15.0

# RFC 9110 §9.2.2; a request with one of these may be sent again on a new connection.
IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Methods sent without Content-Length when the body is empty (aiohttp's GET_METHODS).
NO_BODY_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_HTTP_SCHEMES: Final = {"http": False, "https": True}
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:")
_ORIGIN_CACHE_SIZE: Final = 1024

# (status, headers as received, body) of one response.
RawResponse = tuple[int, list[tuple[str, str]], bytes]


class BackendError(Exception):
    """The backend could not be reached or gave no usable response."""


class BackendConnectError(BackendError):
    """No connection: refused, unreachable, name not resolved, TLS handshake failed."""


class BackendDisconnected(BackendError):
    """The connection closed or broke before the response was complete."""

    def __init__(self, message: str, *, nothing_received: bool = False) -> None:
        super().__init__(message)
        self.nothing_received = nothing_received


class BackendProtocolError(BackendError):
    """The bytes received are not a valid HTTP/1.x response (or could not be decoded)."""


class ResponseTooLarge(BackendError):
    """The response head or body is over the pool's bounds."""


# -- URLs ----------------------------------------------------------------------------------------


class Origin:
    """Scheme, host and port of a backend, with what every request to it needs precomputed.

    Built by :func:`split_url` (validated once per distinct origin string, then cached).
    """

    __slots__ = ("authorization", "base", "host", "host_header", "pool_key", "port", "scheme", "tls")

    def __init__(self, source: str) -> None:
        """Parse ``scheme://authority`` (raises ``ValueError`` unless a valid http(s) origin)."""
        url = URL(source, encoded=True)
        host = url.raw_host  # yarl parses the authority lazily: a bad port raises here or below
        port = url.port
        scheme = url.scheme
        tls = _HTTP_SCHEMES.get(scheme)
        if tls is None:
            raise ValueError(f"scheme {scheme!r} is not http or https")
        if not host or not _HOST_CHARS.issuperset(host) or port is None:
            raise ValueError(f"invalid host {host!r}")
        self.scheme = scheme
        self.host = host
        self.port = port
        self.tls = tls
        host_port = url.host_port_subcomponent  # default port omitted, IPv6 in brackets
        assert host_port is not None
        self.host_header = host_port
        self.base = f"{scheme}://{host_port}"
        self.pool_key = f"{scheme}://{host.lower()}:{port}"
        self.authorization: str | None = None
        if url.raw_user or url.raw_password:
            # Credentials in the URI become Basic auth, as aiohttp did.
            credentials = f"{url.user or ''}:{url.password or ''}".encode("latin-1")
            self.authorization = "Basic " + base64.b64encode(credentials).decode("ascii")

    def __repr__(self) -> str:
        return f"Origin({self.base!r})"


_origins: dict[str, Origin | ValueError] = {}


def split_url(url: str) -> tuple[Origin, str]:
    """``(origin, request target)`` of an absolute, already percent-encoded http(s) URL.

    The target is sent as is (``/`` when the URL has no path); a fragment must already be gone.
    Raises ``ValueError`` for anything else. Origins are cached (at most 1024 distinct strings).
    """
    start = url.find("://")
    if start <= 0:
        raise ValueError("not an absolute URL")
    start += 3
    end = len(url)
    for sep in "/?":
        position = url.find(sep, start)
        if 0 <= position < end:
            end = position
    source = url[:end]
    origin = _origins.get(source)
    if origin is None:
        try:
            origin = Origin(source)
        except ValueError as exc:
            origin = exc
        if len(_origins) >= _ORIGIN_CACHE_SIZE:
            _origins.clear()
        _origins[source] = origin
    if isinstance(origin, ValueError):
        raise ValueError(str(origin))
    target = url[end:]
    if not target:
        return origin, "/"
    if target[0] == "?":
        target = "/" + target
    if target[-1] == "?" and target.find("?") == len(target) - 1:
        target = target[:-1]  # an empty query is not sent (yarl's raw_path_qs)
    return origin, target


# -- decompression -------------------------------------------------------------------------------


def _zlib_decoder(coding: str) -> Callable[[bytes, int], bytes]:
    def decode(body: bytes, limit: int) -> bytes:
        if coding == "deflate":
            # RFC 9110 says zlib-wrapped, but some servers send raw deflate (aiohttp accepts both).
            wbits = zlib.MAX_WBITS if body[:1] and body[0] & 0x0F == 8 else -zlib.MAX_WBITS
        else:
            wbits = 16 + zlib.MAX_WBITS
        decompressor = zlib.decompressobj(wbits)
        out = decompressor.decompress(body, limit + 1)
        if len(out) > limit:
            raise ResponseTooLarge(f"decoded body over {limit} bytes")
        if not decompressor.eof:
            raise BackendProtocolError(f"truncated {coding} body")
        return out

    return decode


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _zlib_decoder("gzip"),
    "x-gzip": _zlib_decoder("gzip"),
    "deflate": _zlib_decoder("deflate"),
}


def _optional_decoders() -> None:
    try:
        import brotli  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            import brotlicffi as brotli  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            brotli = None
    if brotli is not None:
        _brotli_decompress = brotli.decompress

        def decode_br(body: bytes, limit: int) -> bytes:
            out: bytes = _brotli_decompress(body)
            if len(out) > limit:
                raise ResponseTooLarge(f"decoded body over {limit} bytes")
            return out

        _DECODERS["br"] = decode_br
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            zstd = None
    if zstd is not None:
        _zstd_decompressor = zstd.ZstdDecompressor

        def decode_zstd(body: bytes, limit: int) -> bytes:
            decompressor = _zstd_decompressor()
            out: bytes = decompressor.decompress(body, max_length=limit + 1)
            if len(out) > limit:
                raise ResponseTooLarge(f"decoded body over {limit} bytes")
            return out

        _DECODERS["zstd"] = decode_zstd


_optional_decoders()


def decodable(coding: str) -> bool:
    """True when :func:`decode_body` decodes ``coding`` (else the body is passed on encoded)."""
    return coding.strip().lower() in _DECODERS


def decode_body(coding: str, body: bytes, limit: int) -> bytes:
    decoder = _DECODERS.get(coding.strip().lower())
    if decoder is None or not body:
        return body  # identity, or a coding nobody here knows: passed on as received
    try:
        return decoder(body, limit)
    except BackendError:
        raise
    except Exception as exc:  # zlib.error, brotli.error, ...
        raise BackendProtocolError(f"invalid {coding} body: {exc}") from exc


# -- one connection ------------------------------------------------------------------------------


def serialize_head(
    method: str, target: str, origin: Origin, headers: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    for name, value in headers:
        lines.append(f"{name}: {value}")
    if origin.authorization is not None:
        lines.append(f"Authorization: {origin.authorization}")
    if body or method not in NO_BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("")
    lines.append("")
    text = "\r\n".join(lines)
    # Exactly one CRLF per line, or a name/value/target smuggles a line break into the head.
    breaks = len(lines) - 1
    if text.count("\n") != breaks or text.count("\r") != breaks:
        raise ValueError("CR or LF in the request line or a header")
    return text.encode("utf-8", "surrogateescape")

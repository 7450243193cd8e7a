"""A cached response as the store keeps it (pure core): status, headers and body exactly as the
integration returned them, plus when the entry expires on the gateway's clock (the store's own
TTL only reclaims memory; freshness is decided here, so tests can move the clock)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import orjson

from server.messages import HttpResponse

__all__ = ["MAX_BODY_BYTES", "CachedResponse", "decode", "encode"]

MAX_BODY_BYTES = 1_048_576  # AWS's largest cacheable response (aws-contract.md §4)
_HEAD = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class CachedResponse:
    expires_at: float
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def response(self) -> HttpResponse:
        return HttpResponse(self.status, list(self.headers), self.body)


def encode(response: HttpResponse, expires_at: float) -> bytes:
    head = orjson.dumps([expires_at, response.status, response.headers])
    return _HEAD.pack(len(head)) + head + response.body


def decode(raw: bytes) -> CachedResponse | None:
    """The entry, or None if ``raw`` is not one (written by another version: a miss)."""
    try:
        (size,) = _HEAD.unpack_from(raw)
        expires_at, status, headers = orjson.loads(raw[_HEAD.size : _HEAD.size + size])
        return CachedResponse(
            float(expires_at),
            int(status),
            tuple((str(k), str(v)) for k, v in headers),
            raw[_HEAD.size + size :],
        )
    except (struct.error, orjson.JSONDecodeError, TypeError, ValueError):
        return None

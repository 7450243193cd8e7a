"""Identifiers shaped like AWS's, and AWS's time formats.

Pure core: imports no I/O library (``os.urandom`` is the only entropy source).
"""

from __future__ import annotations

import base64
import itertools
import os
import random
import time
import uuid

__all__ = ["clf_time", "new_api_id", "new_apigw_id", "new_message_id", "new_request_uuid"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def new_apigw_id() -> str:
    """A 16-character base64 id ending in ``=`` (``BFHPhFe3IAMF95g=``): extendedRequestId,
    WebSocket connectionId, messageId and requestId. 11 random bytes encode to 15 chars + ``=``."""
    return base64.b64encode(os.urandom(11)).decode("ascii").replace("/", "_").replace("+", "-")[:15] + "="


# Message and request ids need to be unique, not secret: a per-process random prefix and a counter
# (11 bytes -> 16 base64 chars ending in "=") cost a fifth of a urandom syscall per id.
_PREFIX = os.urandom(5)
_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


def new_message_id() -> str:
    """A unique AWS-shaped id for ``messageId``/``requestId`` (not for connection ids)."""
    raw = _PREFIX + (next(_COUNTER) & 0xFFFFFFFFFFFF).to_bytes(6, "big")
    return base64.b64encode(raw).decode("ascii").replace("/", "_").replace("+", "-")[:15] + "="


_random = random.Random(os.urandom(32))


def new_request_uuid() -> str:
    """REST ``requestId`` / ``x-amzn-RequestId``: a version-4 UUID.

    Unique, not secret: drawn from a PRNG seeded from the OS once, because ``os.urandom`` costs a
    syscall that showed up as 12% of the CPU of a proxied request on a VM.
    """
    n = _random.getrandbits(128)
    n = (n & ~(0xF000 << 64) | (4 << 76)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_api_id(seed: str) -> str:
    """A stable 10-character lower-case id derived from a name, like ``abc123defg``."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, "portway:" + seed).hex
    return digest[:10]


_clf_cache: tuple[int, str] = (-1, "")


def clf_time(epoch_ms: int) -> str:
    """``dd/Mon/yyyy:HH:MM:SS +0000`` (UTC), the format of ``requestContext.requestTime``."""
    global _clf_cache
    second = epoch_ms // 1000
    if _clf_cache[0] == second:  # hot path: every event of the same second shares the string
        return _clf_cache[1]
    t = time.gmtime(second)
    text = (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    _clf_cache = (second, text)
    return text

"""Identifiers shaped like AWS's, and AWS's time formats.

Pure core: imports no I/O library (``os.urandom`` is the only entropy source).
"""

from __future__ import annotations

import base64
import os
import time
import uuid

__all__ = ["clf_time", "new_api_id", "new_apigw_id", "new_request_uuid"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def new_apigw_id() -> str:
    """A 16-character base64 id ending in ``=`` (``BFHPhFe3IAMF95g=``): extendedRequestId,
    WebSocket connectionId, messageId and requestId. 11 random bytes encode to 15 chars + ``=``."""
    return base64.b64encode(os.urandom(11)).decode("ascii").replace("/", "_").replace("+", "-")[:15] + "="


def new_request_uuid() -> str:
    """REST ``requestId`` / ``x-amzn-RequestId``: a UUID."""
    return str(uuid.UUID(bytes=os.urandom(16), version=4))


def new_api_id(seed: str) -> str:
    """A stable 10-character lower-case id derived from a name, like ``abc123defg``."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, "portway:" + seed).hex
    return digest[:10]


def clf_time(epoch_ms: int) -> str:
    """``dd/Mon/yyyy:HH:MM:SS +0000`` (UTC), the format of ``requestContext.requestTime``."""
    t = time.gmtime(epoch_ms / 1000)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )

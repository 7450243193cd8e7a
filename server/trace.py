"""``X-Amzn-Trace-Id``: the X-Ray trace header API Gateway adds to what it forwards and returns.

AWS continues a caller's trace: a header with ``Root=`` keeps its ``Root`` (and ``Parent`` and
``Sampled`` when given); a missing ``Parent`` is drawn, a missing ``Sampled`` is ``0``. Without one,
a new root is drawn: ``Root=1-{epoch seconds, 8 hex}-{24 hex}`` (the X-Ray id format; recorded in
LocalStack's AWS-validated ``test_invocation_trace_id``, docs/aws-contract.md "Trace header").

Pure core: imports no I/O library; time comes in as ``now_ms``.
"""

from __future__ import annotations

import os
import random

__all__ = ["TRACE_HEADER", "trace_header"]

TRACE_HEADER = "X-Amzn-Trace-Id"

# Trace ids must be unique, not secret: a PRNG seeded once from the OS (as server/ids.py does).
_random = random.Random(os.urandom(32))


def trace_header(incoming: str | None, now_ms: int) -> str:
    """The trace header for one request, continuing ``incoming`` (the caller's) when it has a Root."""
    fields: dict[str, str] = {}
    order: list[str] = []
    for part in (incoming or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in fields:
            fields[name] = value
            order.append(name)
    if not fields.get("Root"):
        root = f"1-{now_ms // 1000:08x}-{_random.getrandbits(96):024x}"
        return f"Root={root};Parent={_random.getrandbits(64):016x};Sampled=0"
    fields.setdefault("Parent", f"{_random.getrandbits(64):016x}")
    fields.setdefault("Sampled", "0")
    names = ["Root", "Parent", "Sampled"] + [n for n in order if n not in ("Root", "Parent", "Sampled")]
    return ";".join(f"{name}={fields[name]}" for name in names)

"""The request headers a Lambda proxy event carries, as API Gateway rewrites the client's.

Recorded on AWS (LocalStack's AWS-validated ``test_lambda_aws_proxy_integration``, and the
WebSocket ``$connect`` events of docs/aws-contract.md "Lambda event headers"):

* ``Authorization`` is re-cased (a client's ``authorization`` or ``aUThorization`` arrives as
  ``Authorization``); every other name keeps the client's casing;
* ``Connection`` (hop-by-hop; also ``Upgrade`` on a WebSocket handshake) is not passed on, nor is
  a REST event's ``Content-Length`` (HTTP API events, payload 1.0 and 2.0, keep it, as AWS's
  sample events show);
* ``X-Amzn-Trace-Id`` (server/trace.py), ``X-Forwarded-For`` (the caller's list plus the peer),
  ``X-Forwarded-Port`` and ``X-Forwarded-Proto`` (the port and scheme the client connected to) are
  added, replacing any the client sent under another casing.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Iterable

from server.messages import HttpRequest

__all__ = ["event_headers", "lambda_event_headers", "websocket_connect_headers"]

_DROPPED = frozenset({"connection", "content-length"})
_DROPPED_V2 = frozenset({"connection"})
_DROPPED_WEBSOCKET = _DROPPED | {"upgrade"}
_ADDED = frozenset({"x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"})


def _port(req: HttpRequest) -> str:
    host = req.host
    if host.startswith("["):  # [::1]:3000
        _, _, rest = host.partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        _, _, port = host.rpartition(":") if ":" in host else ("", "", "")
    if port.isdigit():
        return port
    return "443" if req.scheme == "https" else "80"


def lambda_event_headers(
    req: HttpRequest, trace_id: str, *, websocket: bool = False, payload_v2: bool = False
) -> list[tuple[str, str]]:
    """The header pairs of the event, in arrival order, then the ones the gateway adds."""
    return event_headers(
        req.headers,
        trace_id=trace_id,
        source_ip=req.source_ip,
        port=_port(req),
        scheme=req.scheme,
        dropped=_DROPPED_WEBSOCKET if websocket else _DROPPED_V2 if payload_v2 else _DROPPED,
    )


def websocket_connect_headers(
    headers: Iterable[tuple[str, str]], *, trace_id: str, source_ip: str, host: str, secure: bool
) -> list[tuple[str, str]]:
    """The ``$connect`` event's headers (no ``Connection``/``Upgrade``), from the handshake's."""
    scheme = "https" if secure else "http"
    probe = HttpRequest("GET", "/", "", (), b"", source_ip, host, scheme=scheme)
    return event_headers(
        headers,
        trace_id=trace_id,
        source_ip=source_ip,
        port=_port(probe),
        scheme=scheme,
        dropped=_DROPPED_WEBSOCKET,
    )


def event_headers(
    headers: Iterable[tuple[str, str]],
    *,
    trace_id: str,
    source_ip: str,
    port: str,
    scheme: str,
    dropped: frozenset[str],
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    forwarded_for: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname in dropped:
            continue
        if lname in _ADDED:
            if lname == "x-forwarded-for":
                forwarded_for.append(value)
            continue
        out.append(("Authorization" if lname == "authorization" else name, value))
    forwarded_for.append(source_ip)
    out += [
        ("X-Amzn-Trace-Id", trace_id),
        ("X-Forwarded-For", ", ".join(forwarded_for)),
        ("X-Forwarded-Port", port),
        ("X-Forwarded-Proto", scheme),
    ]
    return out

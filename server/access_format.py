"""AWS's access log format (a stage's ``accessLogSettings.format``), compiled once.

A format is text with ``$context.*`` variables, e.g.
``{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","status":"$context.status"}``
(JSON), or a CLF line. :func:`compile_format` splits it once into literal and variable parts,
so a request's line is one ``str.join`` over lookups (requests are benchmarked; no regex or
template engine on the hot path). Pure: no I/O, the values come from the caller.

As on AWS, a value the request does not have renders as ``-`` (so does a variable Portway
does not fill, e.g. ``$context.identity.caller`` of AWS's own examples: :attr:`AccessFormat.unfilled`
names them for a load-time warning), a format must contain ``$context.requestId`` or
``$context.extendedRequestId``, and a template is at most 3 KB (aws-api-gateway.md, limits).
A JSON format (one starting with ``{``) gets its values escaped, so a header or path with a
quote cannot break the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CONTEXT_VARIABLES", "WEBSOCKET_VARIABLES", "AccessFormat", "compile_format"]

# The $context variables Portway fills (server/access_values.py; docs/operations.md lists them).
CONTEXT_VARIABLES = frozenset(
    {
        "apiId",
        "domainName",
        "error.responseType",
        "extendedRequestId",
        "httpMethod",
        "identity.apiKey",
        "identity.sourceIp",
        "identity.userAgent",
        "path",
        "protocol",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "resourcePath",
        "responseLatency",
        "responseLength",
        "routeKey",
        "stage",
        "status",
    }
)
# WebSocket events add these (server/access_values.py, websocket_values).
WEBSOCKET_VARIABLES = frozenset({"connectedAt", "connectionId", "eventType", "messageDirection", "messageId"})
# A variable ends at the first character that cannot continue a name; a trailing dot is text.
_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")
_REQUIRED = ("requestId", "extendedRequestId")
MAX_FORMAT_BYTES = 3 * 1024


def _escape_json(value: str) -> str:
    # Most values need nothing: checking is ~4x cheaper than json.dumps on every value.
    if '"' in value or "\\" in value or not value.isprintable():
        return json.dumps(value)[1:-1]
    return value


@dataclass(frozen=True, slots=True)
class AccessFormat:
    """A compiled format: ``parts`` alternate literal text (even indexes) and variable names."""

    parts: tuple[str, ...]
    json: bool

    @property
    def variables(self) -> tuple[str, ...]:
        return self.parts[1::2]

    @property
    def unfilled(self) -> tuple[str, ...]:
        """Variables of the format that Portway never fills (always ``-``)."""
        known = CONTEXT_VARIABLES | WEBSOCKET_VARIABLES
        return tuple(name for name in self.variables if name not in known)

    def render(self, values: Mapping[str, str]) -> str:
        """One line; ``values``: ``$context`` variable (without the prefix) -> its text."""
        parts = self.parts
        out = [parts[0]]
        get = values.get
        escape = _escape_json if self.json else None
        for i in range(1, len(parts), 2):
            value = get(parts[i])
            if value is None or value == "":
                value = "-"
            elif escape is not None:
                value = escape(value)
            out.append(value)
            out.append(parts[i + 1])
        return "".join(out)


def compile_format(text: str) -> AccessFormat:
    """Split ``text`` into parts; ``ValueError``: too long, or no request id variable."""
    if len(text.encode()) > MAX_FORMAT_BYTES:
        raise ValueError(f"an access log format is at most {MAX_FORMAT_BYTES} bytes")
    parts: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        name = match.group(1)
        parts.append(text[position : match.start()])
        parts.append(name)
        position = match.end()
    parts.append(text[position:])
    if not any(name in _REQUIRED for name in parts[1::2]):
        raise ValueError("an access log format must contain $context.requestId or $context.extendedRequestId")
    return AccessFormat(tuple(parts), text.lstrip().startswith("{"))

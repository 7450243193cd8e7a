"""Dot-segments in request paths: refused before routing (pure core).

``/dev/v1/../../internal/admin`` used to reach an HTTP_PROXY backend as
``/public/v1/../../internal/admin``: any backend (or proxy in front of it) that normalises the
path then served something outside the integration's URI prefix. AWS's own behaviour for such
paths is not recorded in the reference, so the gateway takes the conservative choice: a path
with a ``.`` or ``..`` segment, in any spelling a backend might decode (``%2e``, ``%2E``,
``.%2e``, separators ``/``, ``%2f``, ``\\``, ``%5c``), gets the "no such route" answer of its API
(REST 403 ``Missing Authentication Token``, HTTP API 404 ``Not Found``), so nothing about the
route table leaks either. Resolving per RFC 3986 §5.2.4 instead would be a change to
:func:`has_dot_segment`'s caller in ``server/pipeline.py`` (RouteStage) only.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["has_dot_segment"]

_SEPARATORS = re.compile(r"[/\\]")


def has_dot_segment(raw_path: str) -> bool:
    """True when ``raw_path`` (still percent-encoded) has a ``.`` or ``..`` segment once decoded."""
    if "." not in raw_path and "%" not in raw_path:
        return False  # the common case, without decoding
    return any(segment in (".", "..") for segment in _SEPARATORS.split(unquote(raw_path)))

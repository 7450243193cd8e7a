"""The JSONPath subset mapping templates use: ``$``, ``$.a.b``, ``$.a[0]``, ``$['a b']``,
``$.a[*]``/``$.a.*`` (all elements). Compiled once per expression and cached.

Pure core: imports no I/O library.
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["MISSING", "compile_path", "evaluate"]

MISSING: Any = object()
_PART = re.compile(r"\.([A-Za-z0-9_$@-]+)|\.\*|\[(\d+|-\d+)\]|\[\*\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_WILDCARD = "*"


@functools.lru_cache(maxsize=1024)
def compile_path(path: str) -> tuple[str | int, ...]:
    """``$.a[0].b`` -> ("a", 0, "b"). Raises ValueError for what the subset does not cover."""
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"JSONPath {path!r} must start with $")
    parts: list[str | int] = []
    i = 1
    while i < len(text):
        match = _PART.match(text, i)
        if match is None:
            raise ValueError(f"JSONPath {path!r}: cannot read {text[i:]!r}")
        name, index, quoted, double = match.groups()
        if name is not None:
            parts.append(name)
        elif index is not None:
            parts.append(int(index))
        elif quoted is not None or double is not None:
            parts.append(quoted if quoted is not None else double)
        else:
            parts.append(_WILDCARD)
        i = match.end()
    return tuple(parts)


def evaluate(document: Any, path: str) -> Any:
    """The value at ``path`` (a list for wildcards), or :data:`MISSING`."""
    value = document
    parts = compile_path(path)
    for n, part in enumerate(parts):
        if part == _WILDCARD:
            items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
            if items is None:
                return MISSING
            rest = parts[n + 1 :]
            out = []
            for item in items:
                found = _walk(item, rest)
                if found is not MISSING:
                    out.append(found)
            return out
        value = _step(value, part)
        if value is MISSING:
            return MISSING
    return value


def _walk(value: Any, parts: tuple[str | int, ...]) -> Any:
    for part in parts:
        value = _step(value, part)
        if value is MISSING:
            return MISSING
    return value


def _step(value: Any, part: str | int) -> Any:
    if isinstance(part, int):
        if isinstance(value, list) and -len(value) <= part < len(value):
            return value[part]
        return MISSING
    if isinstance(value, dict):
        return value.get(part, MISSING)
    return MISSING

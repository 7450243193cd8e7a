"""Configuration problems, collected so that one load reports every one of them.

A :class:`ConfigIssue` names *where* (``apis[0].routes["GET /pets"].integration.timeout``,
``functions.hello.events[1].http.path`` or ``line 12, column 5`` for YAML syntax) and *what*.
Loaders record issues in an :class:`Issues` collector and keep going; :func:`server.config.load.load_config`
raises one :class:`ConfigError` carrying all of them at the end. Warnings never stop a load: they
end up in ``GatewayConfig.warnings``.

Pure core: imports no I/O library.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ConfigError", "ConfigIssue", "Issues", "did_you_mean", "loc", "loc_path", "suggestion"]

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def loc(parent: str, key: str | int) -> str:
    """Extend a location: ``loc("apis", 0)`` -> ``apis[0]``, ``loc("apis[0]", "name")`` -> ``apis[0].name``,
    ``loc("routes", "GET /pets")`` -> ``routes["GET /pets"]``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def loc_path(parts: Iterable[str | int]) -> str:
    """``loc_path(["functions", "hello", "events", 0])`` -> ``functions.hello.events[0]``."""
    location = ""
    for part in parts:
        location = loc(location, part)
    return location


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelt ``word`` (difflib's ratio >= 0.6), or None."""
    close = difflib.get_close_matches(word, list(choices), 1)
    return close[0] if close else None


def suggestion(word: str, choices: Iterable[str], what: str = "") -> str:
    """A hint to append to a message: `` (did you mean 'timeout'?)``; without a close match,
    `` (known what: a, b)`` when ``what`` names the choices, else nothing."""
    choices = list(choices)
    close = did_you_mean(word, choices)
    if close is not None:
        return f" (did you mean {close!r}?)"
    if what and choices:
        return f" ({what}: {', '.join(choices)})"
    return ""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: ``location`` is a path into the document (empty for the document itself)."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location or '(document)'}: {self.message}"


class ConfigError(Exception):
    """A definition that cannot be served. ``issues`` holds every problem found, in document order."""

    def __init__(self, issues: Iterable[ConfigIssue], source: Path | None = None) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        self.source = source
        count = len(self.issues)
        head = f"{source}: " if source is not None else ""
        lines = [f"{head}invalid configuration ({count} problem{'' if count == 1 else 's'})"]
        lines.extend(f"  {issue}" for issue in self.issues)
        super().__init__("\n".join(lines))


@dataclass(slots=True)
class Issues:
    """Collector used while loading: errors (fatal at the end) and warnings (kept, never fatal)."""

    errors: list[ConfigIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, location: str, message: str) -> None:
        issue = ConfigIssue(location, message)
        if issue not in self.errors:
            self.errors.append(issue)

    def warn(self, location: str, message: str) -> None:
        text = f"{location or '(document)'}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

    def raise_if_any(self, source: Path | None = None) -> None:
        if self.errors:
            raise ConfigError(self.errors, source)

"""Mapping templates: Velocity (VTL) as API Gateway evaluates it (reference §7.2, §7.3).

The engine is ``airspeed`` (LocalStack's maintained fork, ``airspeed-ext``, written for AWS's
VTL dialect); what AWS adds lives here:

* ``$input``: ``body`` (the raw payload), ``json(path)`` (the JSONPath result as JSON text),
  ``path(path)`` (the result as an object), ``params()`` (``{path, querystring, header}``) and
  ``params(name)`` (path, then query string, then header);
* ``$util``: ``escapeJavaScript``, ``parseJson``, ``urlEncode``, ``urlDecode``,
  ``base64Encode``, ``base64Decode``;
* values print as Java prints them: a map as ``{key=value, ...}``, a list as ``[a, b]``,
  ``true``/``false``, a null as nothing;
* ``$context`` (with ``requestOverride``/``responseOverride``) and ``$stageVariables``.

Templates are compiled once, at start-up (:class:`Template`); a render allocates the namespace
objects only.

Pure core: imports no I/O library.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import airspeed  # type: ignore[import-untyped]

from server.transform.jsonpath import MISSING, evaluate

__all__ = ["Input", "JavaList", "JavaMap", "Template", "TemplateFailure", "Util", "java"]


class TemplateFailure(Exception):
    """A template that does not parse (at load) or fails while rendering (per request)."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


class JavaMap(dict[str, Any]):
    """A JSON object as VTL sees it: prints ``{key=value, ...}``, has Java's map methods."""

    def __str__(self) -> str:
        return "{" + ", ".join(f"{key}={_text(value)}" for key, value in self.items()) + "}"

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self

    def containsKey(self, key: str) -> bool:
        return key in self

    def keySet(self) -> list[str]:
        return list(self.keys())

    def entrySet(self) -> list[JavaMap]:
        return [JavaMap(key=key, value=value) for key, value in self.items()]

    def put(self, key: str, value: Any) -> None:
        self[key] = value


class JavaList(list[Any]):
    """A JSON array as VTL sees it: prints ``[a, b]``."""

    def __str__(self) -> str:
        return "[" + ", ".join(_text(value) for value in self) + "]"

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self

    def get(self, index: int) -> Any:
        return self[index]


def java(value: Any) -> Any:
    """Parsed JSON -> the Java-printing equivalents, recursively."""
    if isinstance(value, dict):
        return JavaMap({str(key): java(item) for key, item in value.items()})
    if isinstance(value, list):
        return JavaList(java(item) for item in value)
    return value


class Input:
    """``$input`` over one payload (parsed lazily, once) and the request's parameters."""

    __slots__ = ("body", "_parsed", "_params")

    def __init__(self, body: str, params: Mapping[str, Mapping[str, str]]) -> None:
        self.body = body
        self._parsed: Any = MISSING
        self._params = params

    def _document(self) -> Any:
        if self._parsed is MISSING:
            try:
                self._parsed = json.loads(self.body) if self.body.strip() else {}
            except ValueError:
                self._parsed = None
        return self._parsed

    def json(self, path: str = "$") -> str:
        found = evaluate(self._document(), path)
        return "null" if found is MISSING else json.dumps(found, separators=(",", ":"), ensure_ascii=False)

    def path(self, path: str = "$") -> Any:
        found = evaluate(self._document(), path)
        return None if found is MISSING else java(found)

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return JavaMap({kind: JavaMap(values) for kind, values in self._params.items()})
        for kind in ("path", "querystring", "header"):
            value = self._params.get(kind, {}).get(name)
            if value is not None:
                return value
        if "header" in self._params:  # header names are case-insensitive
            lowered = name.lower()
            for key, value in self._params["header"].items():
                if key.lower() == lowered:
                    return value
        return ""


class Util:
    """``$util`` (reference §7.3)."""

    @staticmethod
    def escapeJavaScript(text: Any) -> str:
        # JavaScript string escaping, `'` included (AWS's quirk: not valid JSON, see §7.3).
        escaped = json.dumps(_text(text), ensure_ascii=False)[1:-1]
        return escaped.replace("'", "\\'").replace("/", "\\/")

    @staticmethod
    def parseJson(text: str) -> Any:
        return java(json.loads(text))

    @staticmethod
    def urlEncode(text: str) -> str:
        return quote_plus(_text(text), safe="*")

    @staticmethod
    def urlDecode(text: str) -> str:
        return unquote_plus(_text(text))

    @staticmethod
    def base64Encode(text: Any) -> str:
        data = text if isinstance(text, bytes) else _text(text).encode("utf-8")
        return base64.b64encode(data).decode("ascii")

    @staticmethod
    def base64Decode(text: str) -> str:
        return base64.b64decode(_text(text)).decode("utf-8", "replace")


UTIL = Util()


class Template:
    """One mapping template, parsed once."""

    __slots__ = ("source", "_template")

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = airspeed.Template(source)
        try:
            self._template.ensure_compiled()
        except airspeed.TemplateSyntaxError as exc:
            raise TemplateFailure(str(exc)) from None

    def render(self, namespace: dict[str, Any]) -> str:
        namespace.setdefault("util", UTIL)
        try:
            return str(self._template.merge(namespace))
        except Exception as exc:  # the engine's errors, and a template's bad calls
            raise TemplateFailure(f"{type(exc).__name__}: {exc}") from exc

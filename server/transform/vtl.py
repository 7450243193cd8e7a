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
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import airspeed  # type: ignore[import-untyped]
import orjson

from server.transform.fastvtl import compile_fast
from server.transform.jsonpath import MISSING, evaluate
from server.transform.vtl_values import JavaList, JavaMap, _text, java

__all__ = ["Input", "JavaList", "JavaMap", "Template", "TemplateFailure", "Util", "java"]


class TemplateFailure(Exception):
    """A template that does not parse (at load) or fails while rendering (per request)."""


class Input:
    """``$input`` over one payload (parsed lazily, once) and the request's parameters (a
    mapping, or a function building it on first use)."""

    __slots__ = ("body", "_parsed", "_params")

    def __init__(
        self,
        body: str,
        params: Mapping[str, Mapping[str, str]] | Callable[[], Mapping[str, Mapping[str, str]]],
    ) -> None:
        self.body = body
        self._parsed: Any = MISSING
        self._params = params

    def document(self) -> Any:
        """The payload as parsed JSON (``{}`` when empty, None when not JSON)."""
        if self._parsed is MISSING:
            try:
                self._parsed = orjson.loads(self.body) if self.body.strip() else {}
            except orjson.JSONDecodeError:
                self._parsed = None
        return self._parsed

    def json(self, path: str = "$") -> str:
        found = evaluate(self.document(), path)
        return "null" if found is MISSING else orjson.dumps(found).decode()

    def raw(self, path: str = "$") -> Any:
        """``path``'s value as parsed (the fast path prints it Java's way itself)."""
        found = evaluate(self.document(), path)
        return None if found is MISSING else found

    def path(self, path: str = "$") -> Any:
        found = evaluate(self.document(), path)
        return None if found is MISSING else java(found)

    def param_maps(self) -> Mapping[str, Mapping[str, str]]:
        if callable(self._params):
            self._params = self._params()
        return self._params

    def params(self, name: str | None = None) -> Any:
        maps = self.param_maps()
        if name is None:
            return JavaMap({kind: JavaMap(values) for kind, values in maps.items()})
        for kind in ("path", "querystring", "header"):
            value = maps.get(kind, {}).get(name)
            if value is not None:
                return value
        if "header" in maps:  # header names are case-insensitive
            lowered = name.lower()
            for key, value in maps["header"].items():
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
    """One mapping template, parsed once (and compiled to the fast form when it fits)."""

    __slots__ = ("source", "_template", "_fast")

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = airspeed.Template(source)
        try:
            self._template.ensure_compiled()
        except airspeed.TemplateSyntaxError as exc:
            raise TemplateFailure(str(exc)) from None
        self._fast = compile_fast(source)

    @property
    def fast(self) -> bool:
        return self._fast is not None

    def render(self, namespace: dict[str, Any]) -> str:
        try:
            if self._fast is not None:
                return self._fast.render(namespace)
            namespace.setdefault("util", UTIL)
            return str(self._template.merge(namespace))
        except Exception as exc:  # the engine's errors, and a template's bad calls
            raise TemplateFailure(f"{type(exc).__name__}: {exc}") from exc

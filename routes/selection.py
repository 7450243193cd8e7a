"""Selection expressions (API Gateway's shared expression language), compiled once.

Reference: docs/aws-contract.md §1.2 (DG:apigateway-websocket-api-selection-expressions):

* variables start with ``$``; braces ``${...}`` delimit them, so literals and several variables may be
  mixed (``${request.body.service}/${request.body.action}`` -> ``chat/join``);
* evaluation is single pass: a resolved value is never re-evaluated;
* ``\\$`` escapes a dollar (``\\$default`` is the literal ``$default``);
* a missing path resolves to ``""``; non-string values are stringified (see :func:`stringify`);
* an unbraced variable runs over ``[A-Za-z0-9_.-]`` and bracketed indexes (``$request.body.a[0]``),
  so ``$request.body.action`` is the whole expression in the common case.

Variables understood: ``request.body.<path>`` (JSON body), ``request.header.<name>``
(case-insensitive), ``request.querystring.<name>``, ``context.<name>`` and ``stageVariables.<name>``.
A path is dotted names with optional ``[n]`` indexes or ``['quoted key']`` parts.

:func:`select_route` applies AWS's route selection: exact, case-sensitive match on the route key,
else ``$default``; a message that is not a JSON object, or whose expression cannot be evaluated,
goes to ``$default``.

Pure core: imports no I/O library; ``compile_expression`` is the only place an expression is parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "EvaluationSources",
    "SelectionExpression",
    "SelectionSyntaxError",
    "compile_expression",
    "select_route",
    "stringify",
]

_MISSING = object()
_UNBRACED = re.compile(r"\$((?:[A-Za-z0-9_\-]+)(?:\.[A-Za-z0-9_\-]+|\[\d+\]|\['[^']*'\])*)")
_PATH_PART = re.compile(r"\.?([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']*)'\]")


class SelectionSyntaxError(ValueError):
    """An expression that cannot be compiled (unclosed brace, unknown variable root)."""


@dataclass(frozen=True, slots=True)
class EvaluationSources:
    """What an expression may read. ``body`` is the decoded JSON body or ``_MISSING``."""

    body: Any = _MISSING
    headers: Mapping[str, str] = field(default_factory=dict)
    querystring: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    stage_variables: Mapping[str, str] = field(default_factory=dict)


def stringify(value: Any) -> str:
    """Stringify a selected value the way API Gateway (a Java service) does.

    Strings as-is; ``true``/``false``; numbers as JSON writes them; ``null`` as ``""`` (treated like a
    missing path); arrays as ``[a, b]`` and objects as ``{k=v, ...}`` (Java ``toString``; AWS only
    says arrays look "something like" ``[item1, item2]`` — unverified, so kept in this one function).
    """
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(stringify(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={stringify(v)}" for k, v in value.items()) + "}"
    return str(value)


Getter = Callable[[EvaluationSources], Any]


def _walk(value: Any, parts: tuple[str | int, ...]) -> Any:
    for part in parts:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return _MISSING
            value = value[part]
        else:
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
    return value


def _parse_path(text: str, expression: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _PATH_PART.match(text, pos)
        if m is None or m.end() == pos:
            raise SelectionSyntaxError(f"{expression!r}: cannot parse path {text!r}")
        name, index, quoted = m.groups()
        parts.append(int(index) if index is not None else (quoted if quoted is not None else name))
        pos = m.end()
    return tuple(parts)


def _getter(variable: str, expression: str) -> Getter:
    root, _, rest = variable.partition(".")
    if root == "request":
        if rest == "body" or rest.startswith(("body.", "body[")):
            parts = _parse_path(rest[4:], expression)
            return lambda s: _walk(s.body, parts)
        kind, _, path = rest.partition(".")
        if kind == "header":
            lname = path.lower()
            return lambda s: next((v for k, v in s.headers.items() if k.lower() == lname), _MISSING)
        if kind == "querystring":
            return lambda s: s.querystring.get(path, _MISSING)
    elif root == "context":
        parts = _parse_path(rest, expression)
        return lambda s: _walk(s.context, parts)
    elif root == "stageVariables":
        return lambda s: s.stage_variables.get(rest, _MISSING)
    raise SelectionSyntaxError(f"{expression!r}: unknown variable ${variable}")


@dataclass(frozen=True, slots=True)
class SelectionExpression:
    """A compiled expression: literal strings and getters, concatenated on evaluation."""

    source: str
    parts: tuple[str | Getter, ...]
    reads_body: bool
    body_path: tuple[str | int, ...] | None = None  # set when the expression is one body variable

    def evaluate(self, sources: EvaluationSources) -> str:
        if len(self.parts) == 1 and not isinstance(self.parts[0], str):
            return stringify(self.parts[0](sources))
        return "".join(p if isinstance(p, str) else stringify(p(sources)) for p in self.parts)

    def evaluate_raw(self, sources: EvaluationSources) -> Any:
        """The selected value itself when the expression is one variable (else the string)."""
        if len(self.parts) == 1 and not isinstance(self.parts[0], str):
            return self.parts[0](sources)
        return self.evaluate(sources)


def compile_expression(expression: str) -> SelectionExpression:
    """Parse ``expression`` once into a :class:`SelectionExpression`."""
    parts: list[str | Getter] = []
    literal: list[str] = []
    reads_body = False
    body_paths: list[tuple[str | int, ...]] = []
    i = 0
    n = len(expression)
    while i < n:
        ch = expression[i]
        if ch == "\\" and i + 1 < n and expression[i + 1] == "$":
            literal.append("$")
            i += 2
            continue
        if ch == "$":
            if i + 1 < n and expression[i + 1] == "{":
                end = expression.find("}", i + 2)
                if end < 0:
                    raise SelectionSyntaxError(f"{expression!r}: unclosed '${{'")
                variable = expression[i + 2 : end]
                i = end + 1
            else:
                m = _UNBRACED.match(expression, i)
                if m is None:
                    literal.append(ch)  # a lone "$" is literal text
                    i += 1
                    continue
                variable = m.group(1)
                i = m.end()
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_getter(variable, expression))
            if variable == "request.body" or variable.startswith(("request.body.", "request.body[")):
                reads_body = True
                body_paths.append(_parse_path(variable[12:], expression))
            continue
        literal.append(ch)
        i += 1
    if literal or not parts:
        parts.append("".join(literal))
    single_body = len(parts) == 1 and len(body_paths) == 1
    return SelectionExpression(expression, tuple(parts), reads_body, body_paths[0] if single_body else None)


def _selectable(key: str, route_keys: Collection[str]) -> bool:
    """A message may select a custom route or ``$default``, never ``$connect``/``$disconnect``."""
    return key in route_keys and not (key.startswith("$") and key != "$default")


def select_route(
    expression: SelectionExpression,
    message: str | bytes,
    route_keys: Collection[str],
    *,
    sources: EvaluationSources | None = None,
) -> str | None:
    """The route key for one WebSocket message, ``"$default"`` as fallback, or None if no route.

    ``None`` means neither a matching route nor ``$default`` exists: the caller answers with AWS's
    ``{"message": "Forbidden", ...}`` frame and keeps the connection open.
    """
    key: str | None = None
    body: Any = _MISSING
    if expression.body_path is not None and sources is None:
        # Fast path for the common `$request.body.action`: one parse, one walk.
        try:
            evaluated = stringify(_walk(orjson.loads(message), expression.body_path))
        except orjson.JSONDecodeError:
            evaluated = ""
        if _selectable(evaluated, route_keys):
            return evaluated
        return "$default" if "$default" in route_keys else None
    if expression.reads_body:
        try:
            body = orjson.loads(message)
        except orjson.JSONDecodeError:
            body = _MISSING
    if body is not _MISSING or not expression.reads_body:
        base = sources or EvaluationSources()
        evaluated = expression.evaluate(
            EvaluationSources(body, base.headers, base.querystring, base.context, base.stage_variables)
        )
        if _selectable(evaluated, route_keys):
            key = evaluated
    if key is None and "$default" in route_keys:
        key = "$default"
    return key

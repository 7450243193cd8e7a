"""A compiled fast path for the most common mapping templates (pure core).

Most templates only print references: ``$input.json('$.x')``, ``$input.path('$.x').y``,
``$input.params('x')``, ``$input.body``, ``$context.requestId``, ``$stageVariables.x`` and
variables set once with ``#set($v = $input.path('...'))``. Such a template is compiled here into a
list of literal strings and small closures, which renders several times faster than walking
airspeed's tree. Anything else (``#if``, ``#foreach``, ``$util``, method calls, arithmetic, ...)
returns ``None`` from :func:`compile_fast` and the template goes to airspeed; the two agree on
every template the fast path accepts (tests/transform/test_fastvtl.py compares them).

Pure core: imports no I/O library.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from server.transform.vtl_values import _text as _plain
from server.transform.vtl_values import java

__all__ = ["FastTemplate", "compile_fast"]

Getter = Callable[[dict[str, Any], dict[str, Any]], Any]

_SET = re.compile(r"[ \t]*#set\(\s*\$([A-Za-z][A-Za-z0-9_]*)\s*=\s*\$input\.path\('([^']*)'\)\s*\)[ \t]*\n?")
_REF = re.compile(
    r"\$(!)?(\{)?([A-Za-z][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*(?:\((?:'[^']*')?\))?)*)(?(2)\})"
)
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)(\((?:'([^']*)')?\))?")


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return str(java(value))  # Java's {key=value} / [a, b]
    return _plain(value)


def _props(value: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        if isinstance(value, dict):
            value = value.get(name)
        else:
            return None
        if value is None:
            return None
    return value


def _reference(root: str, chain: str, variables: set[str]) -> Getter | None:
    steps: list[tuple[str, bool, str | None]] = []
    position = 0
    while position < len(chain):
        match = _STEP.match(chain, position)
        if match is None:
            return None
        steps.append((match.group(1), match.group(2) is not None, match.group(3)))
        position = match.end()
    size = False
    if steps and steps[-1][1] and steps[-1][0] == "size" and steps[-1][2] is None:
        size = True
        steps.pop()
    if any(call for _, call, _ in steps[1:]) or (root != "input" and any(call for _, call, _ in steps)):
        return None
    names = tuple(name for name, _, _ in steps)
    getter: Getter
    if root == "input":
        if not steps:
            return None
        head, call, argument = steps[0]
        rest = names[1:]
        if head == "body" and not call and not rest and not size:
            getter = lambda ns, local: ns["input"].body  # noqa: E731
        elif head == "json" and call and argument is not None and not rest and not size:
            getter = lambda ns, local: ns["input"].json(argument)  # noqa: E731
        elif head == "params" and call and argument is not None and not rest and not size:
            getter = lambda ns, local: ns["input"].params(argument)  # noqa: E731
        elif head == "path" and call and argument is not None:
            getter = lambda ns, local: _props(ns["input"].raw(argument), rest)  # noqa: E731
        else:
            return None
    elif root in ("context", "stageVariables"):
        if not names or size:
            return None
        getter = lambda ns, local: _props(ns.get(root), names)  # noqa: E731
    elif root in variables:
        getter = lambda ns, local: _props(local.get(root), names)  # noqa: E731
    else:
        return None
    if size:
        inner = getter

        def sized(ns: dict[str, Any], local: dict[str, Any]) -> Any:
            value = inner(ns, local)
            return len(value) if isinstance(value, dict | list) else None

        return sized
    return getter


class FastTemplate:
    """Literal parts and getters; ``#set`` lines bind a variable before the parts after them."""

    __slots__ = ("_parts",)

    def __init__(self, parts: list[str | Getter | tuple[str, str]]) -> None:
        self._parts = parts

    def render(self, namespace: dict[str, Any]) -> str:
        local: dict[str, Any] = {}
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, tuple):
                local[part[0]] = namespace["input"].raw(part[1])
            else:
                out.append(_text(part(namespace, local)))
        return "".join(out)


def compile_fast(source: str) -> FastTemplate | None:
    """The fast form of ``source``, or None when it uses anything beyond the subset."""
    parts: list[str | Getter | tuple[str, str]] = []
    variables: set[str] = set()
    position = 0
    literal: list[str] = []
    length = len(source)
    while position < length:
        char = source[position]
        if char == "#":
            line_start = position == 0 or source[position - 1] == "\n"
            match = _SET.match(source, position) if line_start else None
            if match is None:
                return None
            if literal:
                parts.append("".join(literal))
                literal = []
            variables.add(match.group(1))
            parts.append((match.group(1), match.group(2)))
            position = match.end()
            continue
        if char == "$":
            match = _REF.match(source, position)
            if match is None:
                return None
            getter = _reference(match.group(3), match.group(4), variables)
            if getter is None:
                return None
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(getter)
            position = match.end()
            continue
        if char == "\\":
            return None  # escapes: airspeed's rules
        literal.append(char)
        position += 1
    if literal:
        parts.append("".join(literal))
    return FastTemplate(parts)

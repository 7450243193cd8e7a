"""Serverless Framework v3 variables: ``${source:address, fallback, ...}``.

Supported sources (https://www.serverless.com/framework/docs/providers/aws/guide/variables):

* ``${self:path.to.value}``: another value of the same file (list items by index: ``events.0``);
* ``${opt:stage}`` / ``${opt:region}``: command-line options (only ``--stage`` exists here);
* ``${sls:stage}``: the stage in use (``--stage``, else ``provider.stage``, else ``dev``);
* ``${env:NAME}``: an environment variable;
* ``${aws:region}``, ``${aws:accountId}``, ``${aws:partition}``: the emulated account;
* ``${file(./other.yml):path}``: a value of another YAML or JSON file (relative to serverless.yml);
  any other file is its text (``${file(./public_key)}``), as Serverless reads it.

CloudFormation intrinsic functions (``{"Ref": ...}``, ``!GetAtt``, ``!Sub``) are evaluated by
:mod:`.cloudformation` when the value is knowable locally; otherwise they come back as they are
(opaque mappings). ``${AWS::Region}``-style placeholders are CloudFormation's, not variables, and
stay as text (as in Serverless since v2.3); inside ``Fn::Sub`` so do ``${Resource}`` and
``${Resource.Attribute}``.

A fallback is used when a source has no value: ``${self:custom.x, 'default'}``,
``${opt:stage, self:provider.stage}``, ``${env:A, ${env:B, 'c'}}``. Variables nest inside addresses
(``${self:custom.${sls:stage}.table}``) and interpolate in strings (``"${self:service}-${sls:stage}"``).
A string that is exactly one variable keeps the value's type (a mapping, a number). Other sources
(``ssm``, ``cf``, ``s3``, ``param``, JavaScript files) are reported as unsupported unless a fallback
applies.

Resolution is lazy: only the values the loader reads are resolved, so variables in sections Portway
ignores (plugins, ``resources``) can never fail a load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from server.config.cloudformation import UNKNOWN, Evaluator, Stack, intrinsic
from server.config.errors import Issues, loc, loc_path
from server.config.yamlio import parse_yaml

__all__ = ["Resolver"]

_FAILED: Final = object()  # resolution failed; an issue was recorded
_SOURCE = re.compile(r"^([A-Za-z][\w-]*)(?:\((.*)\))?(?::(.*))?$", re.DOTALL)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_WORD = re.compile(r"^[A-Za-z][\w-]*$")
_SIMPLE = {"opt", "sls", "env", "aws"}
_PSEUDO = re.compile(r"^\s*AWS::\w+\s*$")  # ${AWS::Region}: CloudFormation's
# Inside Fn::Sub also ${Resource}, ${Resource.Attribute} and ${!Literal} are CloudFormation's.
_SUB_PLACEHOLDER = re.compile(r"^\s*(?:!.*|AWS::\w+|[A-Za-z0-9]+(?:\.[A-Za-z0-9_.]+)?)\s*$", re.DOTALL)


def _closing(text: str, index: int) -> int:
    """Index of the ``}`` closing a ``${`` whose body starts at ``index``, or -1."""
    depth, quote = 0, ""
    for position in range(index, len(text)):
        char = text[position]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return position
            depth -= 1
    return -1


def _spans(text: str) -> list[tuple[int, int]] | None:
    spans: list[tuple[int, int]] = []
    start = text.find("${")
    while start != -1:
        end = _closing(text, start + 2)
        if end < 0:
            return None
        spans.append((start, end + 1))
        start = text.find("${", end + 1)
    return spans


def _split(expression: str) -> list[str]:
    """Split on commas outside quotes, braces and parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in expression:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


# What Serverless Framework v3 sets when the file does not (``${self:...}`` sees these values).
_PROVIDER_DEFAULTS = {"provider.stage": "dev", "provider.region": "us-east-1"}


class Resolver:
    """Reads values of a serverless.yml with variables resolved; problems go to ``issues``."""

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        base_dir: Path,
        options: Mapping[str, str],
        env: Mapping[str, str],
        issues: Issues,
        account_id: str = "123456789012",
    ) -> None:
        self._document = document
        self._base_dir = base_dir
        self._options = options
        self._env = env
        self._issues = issues
        self._account_id = account_id
        self._active: list[str] = []
        self._files: dict[Path, Any] = {}
        self._stage: str | None = None
        self._evaluator: Evaluator | None = None
        self.failed: set[str] = set()  # locations whose value could not be resolved
        # Logical ids Portway knows besides the template's resources (set before functions are read).
        self.functions: dict[str, str] = {}
        self.apis: dict[str, str] = {}

    @property
    def stage(self) -> str:
        """``--stage``, else ``provider.stage``, else ``dev`` (what ``${sls:stage}`` answers)."""
        if self._stage is None:
            value = self._options.get("stage") or self.get("provider", "stage")
            self._stage = str(value) if isinstance(value, str | int) and value != "" else "dev"
        return self._stage

    def get(self, *parts: str | int) -> Any:
        """The value at ``parts`` (None if absent or unresolvable). Containers come back with their
        children unresolved: read those with another :meth:`get`, or use :meth:`get_deep`."""
        value = self._walk(self._document, parts, "")
        return None if value is _FAILED else value

    def get_deep(self, *parts: str | int) -> Any:
        value = self._deep(self.get(*parts), loc_path(parts))
        return None if value is _FAILED else value

    def _deep(self, value: Any, location: str) -> Any:
        """Resolve every string inside ``value``; unresolvable entries are left out."""
        value = self._value(value, location)
        if intrinsic(value) is not None:  # opaque CloudFormation: only its Serverless variables
            return self._variables(value, location, template=False)
        if isinstance(value, dict):
            items = ((key, self._deep(item, loc(location, str(key)))) for key, item in value.items())
            return {key: item for key, item in items if item is not _FAILED}
        if isinstance(value, list):
            resolved = (self._deep(item, loc(location, index)) for index, item in enumerate(value))
            return [item for item in resolved if item is not _FAILED]
        return value

    def _walk(self, value: Any, parts: Sequence[str | int], location: str) -> Any:
        for part in parts:
            value = self._value(value, location)
            if isinstance(value, dict):
                value = value.get(part, value.get(int(part)) if str(part).isdigit() else None)
            elif isinstance(value, list) and str(part).isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif value is _FAILED:
                return _FAILED
            else:
                return None
            location = loc(location, part)
        return self._value(value, location)

    def _value(self, value: Any, location: str) -> Any:
        if intrinsic(value) is not None:
            return self._cloudformation(value, location)
        if not isinstance(value, str) or "${" not in value:
            return value
        result = self._string(value, location)
        if result is _FAILED:
            self.failed.add(location)
        return result

    def _cloudformation(self, value: dict[str, Any], location: str) -> Any:
        """An intrinsic function's value when knowable locally, else ``value`` itself (opaque)."""
        key = f"cloudformation:{location}"
        if key in self._active:  # a template resource naming itself: opaque, not an error
            return value
        self._active.append(key)
        try:
            resolved = self._variables(value, location, template=False)
            if resolved is _FAILED:
                self.failed.add(location)
                return _FAILED
            result = self._stack_evaluator().evaluate(resolved)
        finally:
            self._active.pop()
        return value if result is UNKNOWN else result

    def _variables(self, value: Any, location: str, *, template: bool) -> Any:
        """``value`` with the Serverless variables inside resolved (intrinsics left as they are);
        ``template``: a Fn::Sub template, whose own placeholders stay."""
        if isinstance(value, str):
            if "${" not in value:
                return value
            result = self._string(value, location, sub=template)
            if isinstance(result, dict | list):
                return self._variables(result, location, template=False)
            return result
        if isinstance(value, dict):
            sub = intrinsic(value) == "Fn::Sub"
            items: dict[Any, Any] = {}
            for key, item in value.items():
                at = loc(location, str(key))
                if sub and isinstance(item, list) and item:
                    item = [
                        self._variables(part, loc(at, index), template=index == 0)
                        for index, part in enumerate(item)
                    ]
                    items[key] = _FAILED if _FAILED in item else item
                else:
                    items[key] = self._variables(item, at, template=sub)
                if items[key] is _FAILED:
                    return _FAILED
            return items
        if isinstance(value, list):
            values = [
                self._variables(item, loc(location, index), template=False)
                for index, item in enumerate(value)
            ]
            return _FAILED if any(item is _FAILED for item in values) else values
        return value

    def _stack_evaluator(self) -> Evaluator:
        if self._evaluator is None:
            service = self.get("service")
            if isinstance(service, dict):
                service = service.get("name")
            region = self.get("provider", "region")
            stack = Stack(
                region=str(region) if isinstance(region, str) and region else "us-east-1",
                account_id=self._account_id,
                name=f"{service}-{self.stage}",
                lookup=self._template,
                functions=self.functions,
                apis=self.apis,
            )
            self._evaluator = Evaluator(stack)
        return self._evaluator

    def _template(self, path: tuple[str, ...]) -> Any:
        """``resources.<path>``, read for a CloudFormation value: a problem there (an unresolvable
        variable in a section Portway otherwise ignores) makes the value unknown, not an error."""
        saved, self._issues = self._issues, Issues()
        try:
            value = self.get_deep("resources", *path)
            return None if self._issues.errors else value
        finally:
            self._issues = saved

    def _string(self, text: str, location: str, *, sub: bool = False) -> Any:
        spans = _spans(text)
        if spans is None:
            self._issues.error(location, f"unterminated variable in {text!r}")
            return _FAILED
        keep = _SUB_PLACEHOLDER if sub else _PSEUDO
        spans = [(start, end) for start, end in spans if not keep.match(text[start + 2 : end - 1])]
        if not spans:
            return text
        if spans == [(0, len(text))]:
            return self._expression(text[2:-1], location)
        pieces, position = [], 0
        for start, end in spans:
            value = self._expression(text[start + 2 : end - 1], location)
            if value is _FAILED:
                return _FAILED
            if isinstance(value, dict | list) or value is None:
                kind = "null" if value is None else type(value).__name__
                self._issues.error(location, f"{text[start:end]} is a {kind}; it cannot be part of a string")
                return _FAILED
            text_value = ("true" if value else "false") if isinstance(value, bool) else str(value)
            pieces += [text[position:start], text_value]
            position = end
        return "".join([*pieces, text[position:]])

    def _expression(self, expression: str, location: str) -> Any:
        notes: list[str] = []
        sources = _split(expression)
        for index, source in enumerate(sources):
            if index == 0 and _WORD.match(source):  # `${foo}`: a typo (bare words are fallbacks only)
                self._issues.error(
                    location, f"${{{expression}}}: {source!r} is not a variable source:address"
                )
                return _FAILED
            found, value = self._source(source, location, notes)
            if value is _FAILED or found:
                return value
        hint = f"${{{sources[0]}, 'value'}}"
        reason = "; ".join(notes) or "no value found"
        self._issues.error(location, f"cannot resolve ${{{expression}}}: {reason} (a fallback helps: {hint})")
        return _FAILED

    def _source(self, source: str, location: str, notes: list[str]) -> tuple[bool, Any]:
        if source[:2] == "${" and _spans(source) == [(0, len(source))]:
            value = self._expression(source[2:-1], location)
            return value is not _FAILED, value
        if len(source) >= 2 and source[0] == source[-1] and source[0] in "'\"":
            value = self._value(source[1:-1], location)
            return value is not _FAILED, value
        if _NUMBER.match(source):
            return True, float(source) if "." in source else int(source)
        if source in ("true", "false", "null"):
            return True, {"true": True, "false": False, "null": None}[source]
        match = _SOURCE.match(source)
        if match is None or (match.group(2) is None and match.group(3) is None):
            return True, source  # a bare word: a literal fallback
        kind, parameter, address = match.group(1), match.group(2), self._value(match.group(3) or "", location)
        if address is _FAILED:
            return False, _FAILED
        address = str(address).strip()
        if kind == "self":
            value = self._reference(f"self:{address}", self._document, address, "", location)
            if value is None and address in _PROVIDER_DEFAULTS:
                # Serverless fills these in before resolving: the official examples rely on
                # ${opt:stage, self:provider.stage} with no provider.stage in the file.
                value = self.stage if address == "provider.stage" else _PROVIDER_DEFAULTS[address]
            if value is _FAILED:
                self._issues.error(location, f"${{self:{address}}} cannot be resolved (see {address})")
        elif kind == "file" and parameter is not None:
            value = self._file(parameter.strip().strip("'\""), address, location, notes)
        elif kind in _SIMPLE:
            value = self._simple(kind, address, location)
        else:
            notes.append(
                f"source {kind!r} is not supported (Portway resolves self, opt, sls, env, aws, file)"
            )
            return False, None
        if value is _FAILED:
            return False, _FAILED
        return value is not None, value

    def _simple(self, kind: str, address: str, location: str) -> Any:
        if kind == "opt":
            return self._options.get(address)
        if kind == "env":
            return self._env.get(address)
        if kind == "sls":
            if address == "stage":
                return self._reference("sls:stage", None, "", "", location)
            return "portway-local" if address == "instanceId" else None
        region = self.get("provider", "region") or "us-east-1"
        return {"region": region, "accountId": self._account_id, "partition": "aws"}.get(address)

    def _reference(self, key: str, root: Any, address: str, location: str, used_at: str) -> Any:
        """Resolve a self/file/sls reference (``location``: where ``root`` is) with cycle detection."""
        if key in self._active:
            chain = " -> ".join([*self._active[self._active.index(key) :], key])
            self._issues.error(used_at, f"circular variable reference: {chain}")
            return _FAILED
        self._active.append(key)
        try:
            if key == "sls:stage":
                return self.stage
            parts = [part for part in address.split(".") if part]
            return self._walk(root, parts, location)
        finally:
            self._active.pop()

    def _file(self, name: str, address: str, location: str, notes: list[str]) -> Any:
        path = (self._base_dir / name).resolve()
        if path.suffix in (".js", ".cjs", ".mjs", ".ts"):
            notes.append(f"file({name}): JavaScript files cannot be run by Portway")
            return None
        if path not in self._files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                notes.append(f"file({name}): {exc}")
                return None
            if path.suffix not in (".yml", ".yaml", ".json"):
                self._files[path] = text  # any other file is its text, as Serverless reads it
            else:
                data, problems = parse_yaml(text)
                if problems and data is None:
                    notes.append(f"file({name}): {problems[0]}")
                    return None
                self._files[path] = data
        if isinstance(self._files[path], str):  # a text file has no keys
            if address:
                notes.append(f"file({name}) is a text file: it has no {address!r} to read")
                return None
            return self._files[path]
        return self._reference(
            f"file({name}):{address}", self._files[path], address, f"file({name})", location
        )

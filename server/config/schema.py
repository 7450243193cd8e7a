"""The JSON Schema of the native format (``portway.schema.json``) and readable schema errors.

The schema is the one editors use (``# yaml-language-server: $schema=...``); validation uses the
``jsonschema`` library. Each error becomes a ConfigIssue at its document location
(``apis[0].routes["GET /pets"].integration.timeout``). Unknown keys are reported one by one, with
a "did you mean" hint; a schema may carry ``x-messages: {keyword: message}`` to replace the
library's wording for one keyword (used for patterns and the one-integration rule).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]

from server.config.errors import Issues, did_you_mean, loc

__all__ = ["SCHEMA_PATH", "schema_issues"]

SCHEMA_PATH = Path(__file__).with_name("portway.schema.json")


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def schema_issues(document: Any, issues: Issues) -> tuple[set[int], set[tuple[int, str]]]:
    """Report every schema error; return the APIs and the routes (api index, key) that have one.

    An API with an error outside its routes is skipped by the second pass (-1: the document).
    """
    bad_apis: set[int] = set()
    bad_routes: set[tuple[int, str]] = set()
    errors = list(_validator().iter_errors(document))
    errors.sort(key=lambda e: [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in e.absolute_path])
    for error in errors:
        for location, message in _describe(error):
            issues.error(location, message)
        path = list(error.absolute_path)
        if len(path) < 2 or path[0] != "apis" or not isinstance(path[1], int):
            bad_apis.add(-1)
        elif len(path) >= 4 and path[2] == "routes":
            bad_routes.add((path[1], str(path[3])))
        elif len(path) == 3 and path[2] == "routes" and "propertyNames" in error.absolute_schema_path:
            bad_routes.add((path[1], str(error.instance)))
        else:
            bad_apis.add(path[1])
    return bad_apis, bad_routes


def _describe(error: ValidationError) -> list[tuple[str, str]]:
    location = ""
    for part in error.absolute_path:
        location = loc(location, part if isinstance(part, int) else str(part))
    if "propertyNames" in error.absolute_schema_path:
        location = loc(location, str(error.instance))
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("x-messages", {})
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = list(schema.get("properties", {}))
        found = []
        for key in error.instance:
            if key not in allowed:
                close = did_you_mean(str(key), allowed)
                hint = f"did you mean {close!r}?" if close else f"allowed: {', '.join(allowed)}"
                found.append((loc(location, str(key)), f"unknown key {key!r} ({hint})"))
        return found
    if error.validator in custom:
        return [(location, str(custom[error.validator]))]
    if error.validator == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        return [(location, f"missing required key {key!r}") for key in missing]
    return [(location, error.message)]

"""Request validators in both config formats (reference §7.1) -> :class:`RequestValidation`.

serverless.yml (Serverless v3): an ``http`` event's ``request.schemas`` (content type -> schema,
``{schema, name, description}``, or the key of ``provider.apiGateway.request.schemas``) and
``request.parameters`` (``querystrings``/``headers``/``paths``: name -> ``true`` or
``{required: true}``). As Serverless deploys it, a method with ``schemas`` gets a validator
checking body and parameters; ``reqValidatorName`` names an ``AWS::ApiGateway::RequestValidator``
resource instead. Native format: a route's ``requestValidator`` (``all``, ``params-only``,
``body-only``), ``requestParameters`` (AWS's keys) and ``requestModels`` (content type -> model
name or inline schema), and the API's ``models``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

from server.config.errors import Issues, loc
from server.config.model import RequestValidation
from server.config.variables import Resolver

__all__ = [
    "VALIDATORS",
    "build_validation",
    "check_model",
    "parameter_key",
    "serverless_models",
    "serverless_validation",
]

VALIDATORS = {"all": (True, True), "params-only": (False, True), "body-only": (True, False)}
_PARAMETER = re.compile(r"^method\.request\.(querystring|header|path)\.[a-zA-Z0-9._$-]+$")
_SERVERLESS_LOCATIONS = {"querystrings": "querystring", "headers": "header", "paths": "path"}


def parameter_key(group: str, name: str) -> str | None:
    """serverless ``request.parameters.<group>.<name>`` -> AWS's ``method.request.<loc>.<name>``."""
    location = _SERVERLESS_LOCATIONS.get(group)
    return None if location is None else f"method.request.{location}.{name}"


def check_model(schema: Any, location: str, issues: Issues) -> Mapping[str, object] | None:
    """A JSON Schema draft-4 model, checked once at load."""
    if not isinstance(schema, Mapping):
        issues.error(location, "a model is a JSON Schema object (draft 4)")
        return None
    try:
        Draft4Validator.check_schema(dict(schema))
    except SchemaError as exc:
        issues.error(location, f"not a valid JSON Schema (draft 4): {exc.message}")
        return None
    return MappingProxyType(dict(schema))


def build_validation(
    validator: str,
    required: list[str],
    models: Mapping[str, Any],
    api_models: Mapping[str, Mapping[str, object]],
    location: str,
    issues: Issues,
) -> RequestValidation | None:
    """``models``: content type -> model name (of ``api_models``) or inline schema."""
    if validator not in VALIDATORS:
        issues.error(location, f"validator {validator!r}: use one of {', '.join(VALIDATORS)}")
        return None
    body, parameters = VALIDATORS[validator]
    for key in required:
        if not _PARAMETER.match(key):
            issues.error(location, f"{key!r} is not method.request.{{querystring|header|path}}.<name>")
            return None
    schemas: dict[str, Mapping[str, object]] = {}
    for content_type, model in models.items():
        where = loc(location, str(content_type))
        if isinstance(model, str):
            if model not in api_models:
                issues.error(where, f"no model named {model!r}")
                continue
            schemas[str(content_type)] = api_models[model]
        else:
            checked = check_model(model, where, issues)
            if checked is not None:
                schemas[str(content_type)] = checked
    return RequestValidation(body, parameters, tuple(sorted(set(required))), MappingProxyType(schemas))


def serverless_models(r: Resolver, issues: Issues) -> dict[str, Mapping[str, object]]:
    """``provider.apiGateway.request.schemas``: key -> ``{name, schema, description}`` (or a bare
    schema). Registered under both the key and the model ``name``: events use the key, ``$ref``
    uses the name."""
    parts = ("provider", "apiGateway", "request", "schemas")
    raw = r.get_deep(*parts)
    models: dict[str, Mapping[str, object]] = {}
    if not isinstance(raw, Mapping):
        return models
    for key, entry in raw.items():
        where = ".".join((*parts, str(key)))
        schema = entry.get("schema") if isinstance(entry, Mapping) and "schema" in entry else entry
        checked = check_model(schema, where, issues)
        if checked is None:
            continue
        models[str(key)] = checked
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            models[entry["name"]] = checked
    return models


def serverless_validation(
    r: Resolver, parts: tuple[str | int, ...], models: Mapping[str, Mapping[str, object]], issues: Issues
) -> RequestValidation | None:
    """An ``http`` event's validator, as Serverless v3 deploys it (module docstring)."""
    where = ".".join(map(str, parts))
    request = r.get_deep(*parts, "request")
    request = request if isinstance(request, Mapping) else {}
    required: list[str] = []
    parameters = request.get("parameters")
    for group, names in (parameters or {}).items() if isinstance(parameters, Mapping) else ():
        for name, setting in (names or {}).items() if isinstance(names, Mapping) else ():
            key = parameter_key(str(group), str(name))
            flag = setting.get("required") if isinstance(setting, Mapping) else setting
            if key is None:
                issues.warn(
                    f"{where}.request.parameters.{group}", "use querystrings, headers or paths (ignored)"
                )
                break
            if flag is True:
                required.append(key)
    schemas = request.get("schemas")
    schemas = schemas if isinstance(schemas, Mapping) else {}
    inline: dict[str, Any] = {}
    for content_type, entry in schemas.items():
        if isinstance(entry, Mapping) and "schema" in entry:
            entry = entry["schema"]
        inline[str(content_type)] = entry
    validator_name = r.get_deep(*parts, "reqValidatorName")
    if isinstance(validator_name, str) and validator_name:
        resource = r.get_deep("resources", "Resources", validator_name, "Properties")
        if not isinstance(resource, Mapping):
            issues.error(
                f"{where}.reqValidatorName", f"no AWS::ApiGateway::RequestValidator {validator_name!r}"
            )
            return None
        body, params = (
            bool(resource.get("ValidateRequestBody")),
            bool(resource.get("ValidateRequestParameters")),
        )
        mode = "all" if body and params else "body-only" if body else "params-only" if params else None
        if mode is None:
            return None
    elif inline:
        mode = "all"  # Serverless's "Validate request body and querystring parameters" validator
    else:
        if required:
            issues.warn(
                f"{where}.request.parameters",
                "required parameters are checked only with a request validator (request.schemas or "
                "reqValidatorName), as on AWS (not checked)",
            )
        return None
    return build_validation(mode, required, inline, models, f"{where}.request.schemas", issues)

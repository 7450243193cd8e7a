"""Non-proxy integration settings (reference §7, §8) in both config formats.

Native format (the fields of OpenAPI's ``x-amazon-apigateway-integration``), on ``http`` and
``mock`` integrations: ``requestTemplates`` (content type -> VTL), ``passthroughBehavior``
(``WHEN_NO_MATCH``, ``WHEN_NO_TEMPLATES``, ``NEVER``; any case), ``requestParameters``
(``integration.request.{header|querystring|path}.x`` -> source) and ``responses`` (status regex or
``default`` -> ``{statusCode, responseParameters, responseTemplates}``).
serverless.yml ``http`` events with ``integration: http`` / ``mock``: ``request.template``,
``request.passThrough``, ``response.statusCodes`` (``{code: {pattern, template, headers}}``),
``response.headers`` and ``response.template`` for the default response.
Templates are compiled here, so a bad one is a load error, not a 500 later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from server.config.errors import Issues, loc
from server.config.model import ApiKind, IntegrationResponseConfig, frozen_map
from server.transform.http_api import check_mapping_key
from server.transform.vtl import Template, TemplateFailure

__all__ = [
    "LAMBDA_DEFAULT_RESPONSES",
    "PASSTHROUGH",
    "TRANSFORM_KEYS",
    "http_api_mapping",
    "serverless_transform",
    "transform_fields",
]

PASSTHROUGH = ("WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER")
# What Serverless v3 deploys for `integration: lambda` without `response.statusCodes`: 200 as the
# default, and each error status for an errorMessage containing "[<status>]".
LAMBDA_DEFAULT_RESPONSES = (
    IntegrationResponseConfig(200),
    *(
        IntegrationResponseConfig(code, rf".*\[{code}\].*")
        for code in (400, 401, 403, 404, 422, 500, 502, 504)
    ),
)
TRANSFORM_KEYS = (
    "requestTemplates",
    "passthroughBehavior",
    "requestParameters",
    "responses",
    "contentHandling",
)
CONTENT_HANDLING = ("CONVERT_TO_TEXT", "CONVERT_TO_BINARY")
_TARGET = re.compile(r"^integration\.request\.(header|querystring|path)\.[a-zA-Z0-9._$-]+$")
_RESPONSE_TARGET = re.compile(r"^method\.response\.header\.[a-zA-Z0-9._$-]+$")


def _templates(raw: Any, location: str, issues: Issues) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        issues.error(location, "expected content type -> template")
        return {}
    out: dict[str, str] = {}
    for content_type, source in raw.items():
        text = "" if source is None else str(source)
        try:
            Template(text)
        except TemplateFailure as exc:
            issues.error(loc(location, str(content_type)), f"template does not parse: {exc}")
            continue
        out[str(content_type)] = text
    return out


def _parameters(
    raw: Any, pattern: re.Pattern[str], what: str, location: str, issues: Issues
) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        issues.error(location, f"expected {what} -> source")
        return {}
    out: dict[str, str] = {}
    for target, source in raw.items():
        if not pattern.match(str(target)):
            issues.error(loc(location, str(target)), f"a target is {what}")
            continue
        out[str(target)] = str(source)
    return out


def _response(
    pattern: str | None, raw: Any, location: str, issues: Issues
) -> IntegrationResponseConfig | None:
    raw = raw or {}
    try:
        status = int(str(raw.get("statusCode", 200)))
    except ValueError:
        status = 0
    if not 100 <= status <= 599:
        issues.error(loc(location, "statusCode"), f"{raw.get('statusCode')!r} is not an HTTP status")
        return None
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            issues.error(location, f"selection pattern {pattern!r}: {exc}")
            return None
    what = "method.response.header.<name>"
    return IntegrationResponseConfig(
        status,
        pattern,
        frozen_map(_parameters(raw.get("responseParameters"), _RESPONSE_TARGET, what, location, issues)),
        frozen_map(_templates(raw.get("responseTemplates"), loc(location, "responseTemplates"), issues)),
        _content_handling(raw.get("contentHandling"), loc(location, "contentHandling"), issues),
    )


def _content_handling(raw: Any, location: str, issues: Issues) -> str | None:
    if raw is None:
        return None
    value = str(raw).upper()
    if value not in CONTENT_HANDLING:
        issues.error(location, f"use one of {', '.join(CONTENT_HANDLING)}")
        return None
    return value


def transform_fields(raw: Mapping[str, Any], location: str, issues: Issues) -> dict[str, Any]:
    """IntegrationConfig keyword arguments from the native fields present in ``raw``."""
    out: dict[str, Any] = {}
    if "requestTemplates" in raw:
        out["request_templates"] = frozen_map(
            _templates(raw["requestTemplates"], loc(location, "requestTemplates"), issues)
        )
    if "passthroughBehavior" in raw:
        value = str(raw["passthroughBehavior"]).upper()
        if value not in PASSTHROUGH:
            issues.error(loc(location, "passthroughBehavior"), f"use one of {', '.join(PASSTHROUGH)}")
        else:
            out["passthrough"] = value
    if "requestParameters" in raw:
        what = "integration.request.{header|querystring|path}.<name>"
        where = loc(location, "requestParameters")
        out["request_parameters"] = frozen_map(
            _parameters(raw["requestParameters"], _TARGET, what, where, issues)
        )
    if "contentHandling" in raw:
        out["content_handling"] = _content_handling(
            raw["contentHandling"], loc(location, "contentHandling"), issues
        )
    if "responses" in raw:
        responses = []
        for key, body in (raw["responses"] or {}).items():
            pattern = None if str(key) in ("default", "") else str(key)
            built = _response(pattern, body, loc(loc(location, "responses"), str(key)), issues)
            if built is not None:
                responses.append(built)
        out["responses"] = tuple(responses)
    return out


def _header_sources(raw: Any) -> dict[str, str]:
    items = raw.items() if isinstance(raw, Mapping) else ()
    return {f"method.response.header.{name}": str(value) for name, value in items}


def serverless_transform(request: Any, response: Any, location: str, issues: Issues) -> dict[str, Any]:
    """IntegrationConfig keyword arguments from an ``http`` event's ``request``/``response``."""
    out: dict[str, Any] = {}
    request = request if isinstance(request, Mapping) else {}
    response = response if isinstance(response, Mapping) else {}
    if "template" in request:
        out["request_templates"] = frozen_map(
            _templates(request["template"], f"{location}.request.template", issues)
        )
    if "contentHandling" in request:
        where = f"{location}.request.contentHandling"
        out["content_handling"] = _content_handling(request["contentHandling"], where, issues)
    if "passThrough" in request:
        value = str(request["passThrough"]).upper()
        if value in PASSTHROUGH:
            out["passthrough"] = value
        else:
            issues.error(f"{location}.request.passThrough", f"use one of {', '.join(PASSTHROUGH)}")
    if response:
        headers = {
            f"method.response.header.{name}": str(value)
            for name, value in (response.get("headers") or {}).items()
        }
        template = response.get("template")
        default_templates = {"application/json": str(template)} if isinstance(template, str) else {}
        codes = response.get("statusCodes")
        responses: list[IntegrationResponseConfig] = []
        if isinstance(codes, Mapping) and codes:
            for code, spec in codes.items():
                spec = spec if isinstance(spec, Mapping) else {}
                pattern = spec.get("pattern")
                templates = spec.get("template")
                if isinstance(templates, str):
                    templates = {"application/json": templates}
                raw = {
                    "statusCode": code,
                    "responseParameters": {
                        **headers,
                        **{
                            f"method.response.header.{k}": str(v)
                            for k, v in (spec.get("headers") or {}).items()
                        },
                    },
                    "responseTemplates": templates if templates is not None else default_templates,
                }
                built = _response(pattern or None, raw, f"{location}.response.statusCodes.{code}", issues)
                if built is not None:
                    responses.append(built)
        else:
            raw = {"statusCode": 200, "responseParameters": headers, "responseTemplates": default_templates}
            built = _response(None, raw, f"{location}.response", issues)
            if built is not None:
                responses.append(built)
        out["responses"] = tuple(responses)
    return out


def http_api_mapping(raw: Mapping[str, Any], kind: ApiKind, location: str, issues: Issues) -> dict[str, Any]:
    """HTTP API ``parameterMapping`` / ``responseParameters`` of an ``http_proxy`` integration."""
    out: dict[str, Any] = {}
    if not any(key in raw for key in ("parameterMapping", "responseParameters")):
        return out
    if kind is not ApiKind.HTTP:
        issues.error(location, "parameterMapping and responseParameters apply to HTTP APIs")
        return out
    request: dict[str, str] = {}
    for key, value in (raw.get("parameterMapping") or {}).items():
        problem = check_mapping_key(str(key), response=False)
        if problem:
            issues.error(loc(loc(location, "parameterMapping"), str(key)), problem)
            continue
        request[str(key)] = str(value)
    responses: dict[str, Mapping[str, str]] = {}
    for status, items in (raw.get("responseParameters") or {}).items():
        where = loc(loc(location, "responseParameters"), str(status))
        if not str(status).isdigit() or not 200 <= int(str(status)) <= 599:
            issues.error(where, "response mappings are keyed by status code 200 to 599")
            continue
        mapped: dict[str, str] = {}
        for key, value in (items or {}).items():
            problem = check_mapping_key(str(key), response=True)
            if problem:
                issues.error(loc(where, str(key)), problem)
                continue
            mapped[str(key)] = str(value)
        responses[str(status)] = frozen_map(mapped)
    out["request_parameters"] = frozen_map(request)
    out["response_mapping"] = MappingProxyType(responses)
    return out

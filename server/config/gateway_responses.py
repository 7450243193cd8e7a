"""Customised gateway responses in both config formats (reference §2.6).

serverless.yml: ``resources.Resources`` entries of ``Type: AWS::ApiGateway::GatewayResponse``
(``ResponseType``, ``StatusCode``, ``ResponseParameters``, ``ResponseTemplates``). Native format:
an API's ``gatewayResponses`` map, keyed by response type, with the fields of OpenAPI's
``x-amazon-apigateway-gateway-responses`` (``statusCode``, ``responseParameters``,
``responseTemplates``). Both become :class:`~server.config.model.GatewayResponseConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.config.errors import Issues, loc
from server.config.model import GatewayResponseConfig, frozen_map
from server.config.variables import Resolver
from server.gateway_responses import RESPONSE_TYPES

__all__ = ["HEADER_PREFIX", "parse_gateway_response", "serverless_gateway_responses"]

HEADER_PREFIX = "gatewayresponse.header."
_SOURCES = ("method.request.header.", "method.request.querystring.", "method.request.path.")
_SOURCES_ALL = (*_SOURCES, "context.", "stageVariables.")


def parse_gateway_response(
    response_type: Any,
    status: Any,
    parameters: Any,
    templates: Any,
    location: str,
    issues: Issues,
    keys: tuple[str, str, str] = ("statusCode", "responseParameters", "responseTemplates"),
) -> GatewayResponseConfig | None:
    """One gateway response; problems go to ``issues`` (``keys``: the field names as spelt in
    the source format, for locations)."""
    if not isinstance(response_type, str) or response_type not in RESPONSE_TYPES:
        issues.error(location, f"unknown gateway response type {response_type!r}")
        return None
    if response_type == "REQUEST_TOO_LARGE":
        issues.warn(location, "REQUEST_TOO_LARGE cannot be customised on AWS either (ignored)")
        return None
    code: int | None = None
    if status is not None:
        try:
            code = int(str(status))
        except ValueError:
            code = 0
        if not 100 <= code <= 599:
            issues.error(loc(location, keys[0]), f"status {status!r} is not an HTTP status (100-599)")
            return None
    headers: dict[str, str] = {}
    if parameters is not None and not isinstance(parameters, Mapping):
        issues.error(loc(location, keys[1]), "expected a map of 'gatewayresponse.header.X': source")
        parameters = None
    for target, source in (parameters or {}).items():
        where = loc(loc(location, keys[1]), str(target))
        if not str(target).startswith(HEADER_PREFIX) or len(str(target)) == len(HEADER_PREFIX):
            issues.error(where, f"a target is {HEADER_PREFIX}<name>")
            continue
        text = str(source)
        quoted = len(text) >= 2 and text[0] == text[-1] == "'"
        if not quoted and not text.startswith(_SOURCES_ALL):
            issues.error(
                where,
                f"source {text!r}: a quoted static value ('*') or "
                "method.request.{header|querystring|path}.<name>, context.<name>, stageVariables.<name>",
            )
            continue
        headers[str(target)[len(HEADER_PREFIX) :]] = text
    if templates is not None and not isinstance(templates, Mapping):
        issues.error(loc(location, keys[2]), "expected a map of content type: template")
        templates = None
    texts = {str(kind): str(body) for kind, body in (templates or {}).items()}
    return GatewayResponseConfig(response_type, code, frozen_map(headers), frozen_map(texts))


def serverless_gateway_responses(r: Resolver, issues: Issues) -> dict[str, GatewayResponseConfig]:
    """``AWS::ApiGateway::GatewayResponse`` resources of ``resources.Resources`` (only their
    properties are resolved: the other resources are none of the gateway's business)."""
    found: dict[str, GatewayResponseConfig] = {}
    resources = r.get("resources", "Resources")
    if not isinstance(resources, Mapping):
        return found
    for name, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::ApiGateway::GatewayResponse":
            continue
        parts = ("resources", "Resources", name, "Properties")
        where = ".".join(map(str, parts))
        if not isinstance(r.get(*parts), Mapping):
            issues.error(where, "missing Properties")
            continue
        config = parse_gateway_response(
            r.get_deep(*parts, "ResponseType"),
            r.get_deep(*parts, "StatusCode"),
            r.get_deep(*parts, "ResponseParameters"),
            r.get_deep(*parts, "ResponseTemplates"),
            where,
            issues,
            ("StatusCode", "ResponseParameters", "ResponseTemplates"),
        )
        if config is None:
            continue
        if config.response_type in found:
            issues.error(where, f"a second {config.response_type} gateway response")
            continue
        found[config.response_type] = config
    return found

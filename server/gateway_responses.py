"""Customised gateway responses (reference §2.6): per REST API, per response type.

A :class:`~server.config.model.GatewayResponseConfig` is compiled once at load into a
:class:`GatewayResponses` table; :func:`server.render.render_error` asks it for the status,
headers and body of an error. AWS's gateway-response templates are not VTL: only ``$context.*``,
``$stageVariables.*`` (and ``$context.error.*``) are substituted, and header values are either a
quoted static value (``'*'``) or a request parameter (``method.request.header.Origin``).

Pure core: imports no I/O library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from server.config.model import GatewayConfig, GatewayResponseConfig
from server.errors import ClientError, GatewayError, ServerError
from server.messages import header_get

__all__ = [
    "DEFAULT_TEMPLATE",
    "RESPONSE_TYPES",
    "ErrorScope",
    "GatewayResponses",
    "Rendered",
    "compile_gateway_responses",
    "request_lookup",
]

# Every response type AWS defines (BOTO-V1 GatewayResponseType; reference §2.6).
RESPONSE_TYPES = frozenset(
    {
        *("ACCESS_DENIED", "API_CONFIGURATION_ERROR", "AUTHORIZER_CONFIGURATION_ERROR"),
        *("AUTHORIZER_FAILURE", "BAD_REQUEST_PARAMETERS", "BAD_REQUEST_BODY", "DEFAULT_4XX"),
        *("DEFAULT_5XX", "EXPIRED_TOKEN", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT"),
        *("INVALID_API_KEY", "INVALID_SIGNATURE", "MISSING_AUTHENTICATION_TOKEN", "QUOTA_EXCEEDED"),
        *("REQUEST_TOO_LARGE", "RESOURCE_NOT_FOUND", "THROTTLED", "UNAUTHORIZED"),
        *("UNSUPPORTED_MEDIA_TYPE", "WAF_FILTERED"),
    }
)
# AWS's default template of every type (GetGatewayResponses, LS-snap test_gateway_response_crud).
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'

_VARIABLE = re.compile(
    r"\$(?:\{(context|stageVariables)\.([A-Za-z0-9_.]+)\}|(context|stageVariables)\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*))"
)
_PARAMETER = re.compile(r"^method\.request\.(header|querystring|path)\.(.+)$")


@dataclass(slots=True)
class ErrorScope:
    """What a gateway-response template and header mapping can see of the failed request.
    ``context``: flat ``$context`` values (``requestId``, ``stage``, ...); ``lookup``: a request
    parameter by location and name (``None`` when the request never got that far)."""

    context: Mapping[str, str]
    stage_variables: Mapping[str, str]
    lookup: Callable[[str, str], str | None]


@dataclass(slots=True)
class Rendered:
    status: int
    headers: list[tuple[str, str]]
    content_type: str
    body: str


def _substitute(template: str, values: Mapping[str, str], stage_variables: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        space = match.group(1) or match.group(3)
        name = match.group(2) or match.group(4)
        source = values if space == "context" else stage_variables
        return source.get(name, "")

    return _VARIABLE.sub(one, template)


class GatewayResponses:
    """One REST API's customised gateway responses, by response type."""

    __slots__ = ("_by_type",)

    def __init__(self, configs: Mapping[str, GatewayResponseConfig]) -> None:
        self._by_type = dict(configs)

    def __bool__(self) -> bool:
        return bool(self._by_type)

    def render(self, error: GatewayError, scope: ErrorScope | None) -> Rendered | None:
        """The customised answer to ``error``, or ``None`` when AWS's default applies unchanged."""
        group = "DEFAULT_5XX" if isinstance(error, ServerError) else "DEFAULT_4XX"
        if not isinstance(error, ClientError | ServerError):
            return None
        own = self._by_type.get(error.response_type)
        fallback = self._by_type.get(group)
        config = own or fallback
        if config is None:
            return None
        # A type without its own response takes its class's status only when one is set there
        # (setting DEFAULT_4XX's status changes every 4XX type that has no explicit response).
        status = config.status if config.status is not None else error.status
        message = error.message
        values: dict[str, str] = dict(scope.context) if scope is not None else {}
        values["error.message"] = "" if message is None else message
        values["error.messageString"] = json.dumps(message)
        values["error.responseType"] = error.response_type
        values["error.validationErrorString"] = getattr(error, "validation_error", "") or ""
        stage_variables = scope.stage_variables if scope is not None else {}
        headers: list[tuple[str, str]] = []
        for name, source in config.headers.items():
            value = _header_value(source, values, stage_variables, scope)
            if value is not None:
                headers.append((name, value))
        content_type, template = "application/json", DEFAULT_TEMPLATE
        if config.templates:
            content_type = (
                "application/json" if "application/json" in config.templates else next(iter(config.templates))
            )
            template = config.templates[content_type]
        return Rendered(status, headers, content_type, _substitute(template, values, stage_variables))


def _header_value(
    source: str, values: Mapping[str, str], stage_variables: Mapping[str, str], scope: ErrorScope | None
) -> str | None:
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    if source.startswith("context."):
        return values.get(source[len("context.") :])
    if source.startswith("stageVariables."):
        return stage_variables.get(source[len("stageVariables.") :])
    parameter = _PARAMETER.match(source)
    if parameter is not None and scope is not None:
        return scope.lookup(parameter.group(1), parameter.group(2))
    return None


def request_lookup(
    headers: tuple[tuple[str, str], ...], query: Mapping[str, str], path: Mapping[str, str]
) -> Callable[[str, str], str | None]:
    """A parameter lookup over a request's headers, query values and path parameters."""

    def lookup(where: str, name: str) -> str | None:
        if where == "header":
            return header_get(headers, name)
        return (query if where == "querystring" else path).get(name)

    return lookup


def compile_gateway_responses(config: GatewayConfig) -> dict[str, GatewayResponses]:
    """The customised responses of every API that has some, by API id (none: an empty dict, and
    errors render with no lookup beyond one dict miss)."""
    return {api.id: GatewayResponses(api.gateway_responses) for api in config.apis if api.gateway_responses}

"""The request side of a non-proxy integration (reference §7.2, §7.4): template selection and
passthrough, the mapping template, request parameter mapping. One :class:`RequestTransform` per
route, compiled at start-up.

Pure core: imports no I/O library.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson

from server.config.model import IntegrationConfig
from server.errors import ApiConfigurationError, UnsupportedMediaType
from server.events import RequestInfo, body_is_binary
from server.messages import HttpRequest
from server.transform.jsonpath import MISSING, evaluate
from server.transform.vtl import Input, Template, TemplateFailure

__all__ = ["RequestTransform", "context_values", "convert", "request_params"]


def request_params(info: RequestInfo) -> dict[str, dict[str, str]]:
    """``$input.params()``: path, query string (last value) and header (last value) maps."""
    req = info.request
    return {
        "path": dict(info.path_parameters),
        "querystring": dict(parse_qsl(req.query_string, keep_blank_values=True)),
        "header": dict(req.headers),
    }


def context_values(info: RequestInfo) -> dict[str, Any]:
    """``$context`` of a mapping template (reference §7.3), with the override maps."""
    req = info.request
    return {
        "accountId": info.account_id,
        "apiId": info.api_id,
        "domainName": req.host.partition(":")[0],
        "extendedRequestId": info.extended_request_id,
        "httpMethod": req.method,
        "identity": {"sourceIp": req.source_ip, "userAgent": req.header("user-agent") or ""},
        "path": info.stage_prefix + info.path,
        "protocol": req.protocol,
        "requestId": info.request_id,
        "requestTimeEpoch": info.now_ms,
        "resourceId": info.resource_id,
        "resourcePath": info.resource,
        "stage": info.stage,
        "authorizer": dict(info.authorizer or {}),
        "requestOverride": {"header": {}, "querystring": {}, "path": {}},
        "responseOverride": {"header": {}, "status": None},
    }


def _content_type(info: RequestInfo) -> str:
    value = info.request.header("content-type") or "application/json"
    return value.partition(";")[0].strip().lower()


def resolve_source(
    source: str,
    params: Mapping[str, Mapping[str, str]],
    payload: Input,
    context: Mapping[str, Any],
    stage_variables: Mapping[str, str],
    prefix: str = "method.request.",
) -> str | None:
    """A mapping source's value (None: absent). ``prefix``: ``method.request.`` (requests) or
    ``integration.response.`` (responses, where ``params`` holds the backend's headers);
    ``payload``: the body (parsed once, shared with the template)."""
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    if source.startswith("stageVariables."):
        return stage_variables.get(source[15:])
    if source.startswith("context."):
        value: Any = context
        for part in source[8:].split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return None if value is None or isinstance(value, Mapping) else str(value)
    if not source.startswith(prefix):
        return None
    rest = source[len(prefix) :]
    if rest == "body":
        return payload.body
    if rest.startswith("body."):
        found = evaluate(payload.document(), "$." + rest[5:])
        if found is MISSING:
            return None
        return found if isinstance(found, str) else orjson.dumps(found).decode()
    kind, _, name = rest.partition(".")
    kind = {"multivaluequerystring": "querystring", "multivalueheader": "header"}.get(kind, kind)
    values = params.get(kind)
    if values is None:
        return None
    if kind == "header":
        lowered = name.lower()
        return next((v for k, v in values.items() if k.lower() == lowered), None)
    return values.get(name)


def convert(body: bytes, binary: bool, handling: str) -> bytes:
    """``contentHandling`` (reference §7.6): CONVERT_TO_TEXT base64-encodes a binary body,
    CONVERT_TO_BINARY decodes a text one (a failed decode is AWS's 500); the other kind passes."""
    if handling == "CONVERT_TO_TEXT" and binary:
        return base64.b64encode(body)
    if handling == "CONVERT_TO_BINARY" and not binary:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiConfigurationError() from exc
    return body


class RequestTransform:
    """Template selection, passthrough, the template and parameter mapping for one route."""

    __slots__ = ("_templates", "_passthrough", "_parameters", "_only_mapped", "_content_handling")

    def __init__(self, integration: IntegrationConfig) -> None:
        self._templates = {
            content_type.lower(): Template(source)
            for content_type, source in integration.request_templates.items()
        }
        self._passthrough = integration.passthrough
        self._parameters = tuple(integration.request_parameters.items())
        # A non-proxy integration sends only what is mapped once any mapping is configured.
        self._only_mapped = bool(self._parameters)
        self._content_handling = integration.content_handling

    def apply(self, info: RequestInfo) -> RequestInfo:
        req = info.request
        content_type = _content_type(info)
        template = self._templates.get(content_type)
        # Passthrough behaviour (reference §7.2): NEVER refuses any type without a template,
        # WHEN_NO_TEMPLATES only when templates exist for other types.
        strict = self._passthrough == "NEVER" or (
            self._passthrough == "WHEN_NO_TEMPLATES" and self._templates
        )
        if template is None and strict:
            raise UnsupportedMediaType()
        context = context_values(info)
        body = req.body
        binary = body_is_binary(req, info.binary_media_types)
        # A template sees a binary payload only as base64 (reference §7.6).
        text = base64.b64encode(body).decode("ascii") if binary else body.decode("utf-8", "replace")
        payload = Input(text, lambda: request_params(info))
        if self._content_handling is not None:
            body = convert(body, binary, self._content_handling)
        headers = list(req.headers)
        if template is not None:
            namespace: dict[str, Any] = {
                "input": payload,
                "context": context,
                "stageVariables": dict(info.stage_variables),
            }
            try:
                body = template.render(namespace).encode("utf-8")
            except TemplateFailure as exc:
                raise ApiConfigurationError() from exc
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("Content-Type", content_type))
        query = req.query_string
        path_parameters = dict(info.path_parameters)
        if self._only_mapped:
            params = payload.param_maps()
            headers = [(k, v) for k, v in headers if k.lower() == "content-type"]
            mapped_query: list[tuple[str, str]] = []
            for target, source in self._parameters:
                value = resolve_source(source, params, payload, context, info.stage_variables)
                if value is None:
                    continue
                kind, _, name = target.removeprefix("integration.request.").partition(".")
                if kind == "header":
                    lowered = name.lower()
                    headers = [(k, v) for k, v in headers if k.lower() != lowered]
                    headers.append((name, value))
                elif kind == "querystring":
                    mapped_query.append((name, value))
                elif kind == "path":
                    path_parameters[name] = value
            query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in mapped_query)
        overrides = context["requestOverride"]
        for name, value in overrides["header"].items():
            headers = [(k, v) for k, v in headers if k.lower() != str(name).lower()]
            headers.append((str(name), str(value)))
        if overrides["querystring"]:
            pairs = [*parse_qsl(query, keep_blank_values=True), *overrides["querystring"].items()]
            query = "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in pairs)
        path_parameters.update({str(k): str(v) for k, v in overrides["path"].items()})
        # Copies, not dataclasses.replace: this runs per request and replace() costs ~8 us.
        request = HttpRequest(
            req.method,
            req.raw_path,
            query,
            tuple(headers),
            body,
            req.source_ip,
            req.host,
            req.scheme,
            req.protocol,
            len(body),
        )
        transformed = copy.copy(info)
        transformed.request, transformed.path_parameters = request, path_parameters
        return transformed

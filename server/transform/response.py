"""The response side of a non-proxy integration (reference §7.5): integration response selection,
response parameters and templates; and :class:`TransformingIntegration`, which wraps a route's
integration with it (and answers MOCK integrations from their request template's ``statusCode``).

Pure core: imports no I/O library (the wrapped integration does its own I/O).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from routes.integrations.lambda_custom import LambdaFunctionFailed
from server.config.model import IntegrationConfig, IntegrationResponseConfig, IntegrationType
from server.errors import ApiConfigurationError, IntegrationFailure
from server.events import RequestInfo, media_type_matches
from server.messages import HttpResponse
from server.transform.request import context_values, convert, request_params, resolve_source
from server.transform.vtl import Input, Template, TemplateFailure

__all__ = ["ResponseTransform", "TransformingIntegration", "mock_status"]


class _Integration(Protocol):
    async def invoke(self, info: RequestInfo) -> HttpResponse: ...

    async def close(self) -> None: ...


class _Compiled:
    __slots__ = ("config", "pattern", "templates")

    def __init__(self, config: IntegrationResponseConfig) -> None:
        self.config = config
        self.pattern = re.compile(config.pattern) if config.pattern else None
        self.templates = {ct.lower(): Template(source) for ct, source in config.templates.items()}


def _accept(info: RequestInfo) -> str:
    value = info.request.header("accept") or ""
    return value.split(",")[0].partition(";")[0].strip().lower()


class ResponseTransform:
    """Selects the integration response for a backend status and builds the client response."""

    __slots__ = ("_patterns", "_default")

    def __init__(self, responses: tuple[IntegrationResponseConfig, ...]) -> None:
        compiled = [_Compiled(response) for response in responses]
        self._patterns = [c for c in compiled if c.pattern is not None]
        self._default = next((c for c in compiled if c.pattern is None), None)

    def select(self, selector: str) -> _Compiled:
        # A whole-string match, as Java's String.matches (reference §7.5).
        for candidate in self._patterns:
            assert candidate.pattern is not None
            if candidate.pattern.fullmatch(selector):
                return candidate
        if self._default is None:
            raise ApiConfigurationError()  # no match and no default: AWS's 500 (§0.4)
        return self._default

    def apply(self, info: RequestInfo, backend: HttpResponse, selector: str | None = None) -> HttpResponse:
        """``selector``: what the patterns match (the backend status, or a Lambda errorMessage)."""
        chosen = self.select(str(backend.status) if selector is None else selector)
        context = context_values(info)
        payload = Input(backend.body.decode("utf-8", "replace"), lambda: request_params(info))
        headers: list[tuple[str, str]] = []
        if chosen.config.parameters:
            backend_headers = {"header": dict(backend.headers)}
            for target, source in chosen.config.parameters.items():
                value = resolve_source(
                    source, backend_headers, payload, context, info.stage_variables, "integration.response."
                )
                if value is not None:
                    headers.append((target.removeprefix("method.response.header."), value))
        body = backend.body
        content_type = backend.header("content-type") or "application/json"
        status = chosen.config.status
        if chosen.templates:
            accept = _accept(info)
            key = accept if accept in chosen.templates else "application/json"
            if key not in chosen.templates:
                key = next(iter(chosen.templates))
            namespace: dict[str, Any] = {
                "input": payload,
                "context": context,
                "stageVariables": dict(info.stage_variables),
            }
            try:
                body = chosen.templates[key].render(namespace).encode("utf-8")
            except TemplateFailure as exc:
                raise ApiConfigurationError() from exc
            content_type = key
            override = context["responseOverride"]
            status = _override_status(override.get("status"), status)
            for name, value in override["header"].items():
                headers.append((str(name), str(value)))
        if chosen.config.content_handling is not None:
            binary = media_type_matches(content_type, info.binary_media_types)
            body = convert(body, binary, chosen.config.content_handling)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.insert(0, ("Content-Type", content_type))
        return HttpResponse(status, headers, body)


def _override_status(value: Any, status: int) -> int:
    """``$context.responseOverride.status``: ignored unless an integer from 100 to 599 (§7.3)."""
    try:
        code = int(value)
    except (TypeError, ValueError):
        return status
    return code if 100 <= code <= 599 else status


def mock_status(body: bytes) -> int:
    """A MOCK integration's status: the request template's ``statusCode`` (default 200)."""
    try:
        document = json.loads(body) if body.strip() else {}
    except ValueError:
        return 200
    code = document.get("statusCode") if isinstance(document, Mapping) else None
    try:
        return int(code) if code is not None else 200
    except (TypeError, ValueError):
        return 200


class TransformingIntegration:
    """A route's integration with its integration responses applied (built once per route)."""

    __slots__ = ("_inner", "_mock", "_lambda", "_responses")

    def __init__(self, inner: _Integration, config: IntegrationConfig) -> None:
        self._inner = inner
        self._mock = config.type is IntegrationType.MOCK and bool(config.request_templates)
        self._lambda = config.type is IntegrationType.PYTHON
        self._responses = ResponseTransform(config.responses) if config.responses else None

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        selector: str | None = None
        if self._mock:
            response = HttpResponse(mock_status(info.request.body), [("Content-Type", "application/json")])
        elif self._lambda:
            # Lambda (non-proxy): patterns match the errorMessage of a function error; a result
            # matches as "" (only the default response takes it), reference §7.5.
            try:
                response = await self._inner.invoke(info)
                selector = ""
            except LambdaFunctionFailed as failed:
                if self._responses is None:
                    raise IntegrationFailure() from failed
                response = HttpResponse(200, [("Content-Type", "application/json")], failed.payload)
                selector = failed.message
        else:
            response = await self._inner.invoke(info)
        if self._responses is None:
            return response
        return self._responses.apply(info, response, selector)

    async def close(self) -> None:
        await self._inner.close()

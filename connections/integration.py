"""Integrations for WebSocket routes: an event in, a proxy result (status, headers, body) out.

WebSocket routes reuse the REST integrations' backends (aws-contract.md §1.1-§1.3):

* PYTHON: a Lambda-style handler through a shared :class:`~routes.integrations.base.LambdaInvoker`;
  the result is read like a REST v1 proxy response, but only ``$connect`` interprets
  ``statusCode``/``headers``; other routes send ``body`` back when they have a route response.
* MOCK: the configured body.
* HTTP_PROXY / HTTP: the message body is POSTed to the URI; the backend's status and body are the
  result.

Every failure is raised as :class:`RouteIntegrationError` (timeouts included) so the socket code
has one thing to catch: it answers AWS's ``Internal server error`` frame (or 502 on ``$connect``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from routes.integrations._uri import requote
from routes.integrations.base import FunctionError, InvokeFailure, LambdaInvoker
from routes.integrations.http_client import BackendError, HttpClientPool, split_url
from routes.integrations.python_handler import HandlerInvokers
from server.config.model import ApiConfig, IntegrationConfig, IntegrationType, RouteConfig

__all__ = ["ProxyResult", "RouteIntegration", "RouteIntegrationError", "build_route_integrations"]

log = logging.getLogger("portway.websocket")


class RouteIntegrationError(Exception):
    """The integration failed (raised, timed out, could not be reached)."""


@dataclass(frozen=True, slots=True)
class ProxyResult:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None


class RouteIntegration(Protocol):
    async def invoke(self, event: dict[str, Any], *, request_id: str) -> ProxyResult: ...


def _as_result(value: Any) -> ProxyResult:
    """Read a Lambda result the way WebSocket APIs do: lenient, REST v1 shape if it is a dict."""
    if isinstance(value, dict):
        if len(value) <= 2 and isinstance(value.get("body"), str) and value.get("statusCode", 200) == 200:
            return ProxyResult(body=value["body"])  # the common {"statusCode": 200, "body": "..."}
        status = value.get("statusCode", 200)
        try:
            status = int(status)
        except (TypeError, ValueError):
            status = 200
        raw_headers = value.get("headers") or {}
        headers = {str(k): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
        body = value.get("body")
        if body is not None and not isinstance(body, str):
            body = json.dumps(body)
        return ProxyResult(status, headers, body)
    if value is None:
        return ProxyResult()
    if isinstance(value, str):
        return ProxyResult(body=value)
    return ProxyResult(body=json.dumps(value))


class LambdaRouteIntegration:
    def __init__(self, invoker: LambdaInvoker, config: IntegrationConfig) -> None:
        self._invoker = invoker
        self._timeout_s = config.timeout_ms / 1000
        self._name = config.function_name

    async def invoke(self, event: dict[str, Any], *, request_id: str) -> ProxyResult:
        try:
            value = await self._invoker.invoke_event(event, request_id=request_id, timeout_s=self._timeout_s)
        except TimeoutError as exc:
            log.warning("%s: Task timed out after %.2f seconds", self._name, self._timeout_s)
            raise RouteIntegrationError("timeout") from exc
        except (FunctionError, InvokeFailure) as exc:
            log.error("%s: %s", self._name, exc)
            raise RouteIntegrationError(str(exc)) from exc
        return _as_result(value)


class MockRouteIntegration:
    def __init__(self, config: IntegrationConfig) -> None:
        mock = config.mock
        self._result = ProxyResult(
            mock.status if mock else 200, dict(mock.headers) if mock else {}, mock.body if mock else None
        )

    async def invoke(self, event: dict[str, Any], *, request_id: str) -> ProxyResult:
        return self._result


class HttpRouteIntegration:
    """POST the message body to the route's URI through the lean keep-alive client that REST
    routes use (:class:`~routes.integrations.http_client.HttpClientPool`); the response body is
    the route response. Timeouts and connection failures become :class:`RouteIntegrationError`
    (AWS's ``Internal server error`` frame)."""

    def __init__(self, config: IntegrationConfig, client: HttpClientPool) -> None:
        if not config.uri:
            raise ValueError("an HTTP WebSocket integration needs a uri")
        self._origin, self._target = split_url(requote(config.uri))
        self._client = client
        self._time_limit = config.timeout_ms / 1000

    async def invoke(self, event: dict[str, Any], *, request_id: str) -> ProxyResult:
        body = event.get("body") or ""
        ctx = event.get("requestContext", {})
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amzn-Apigateway-Api-Id", str(ctx.get("apiId", ""))),
            ("connectionId", str(ctx.get("connectionId", ""))),
            ("routeKey", str(ctx.get("routeKey", ""))),
        ]
        payload = body.encode() if isinstance(body, str) else bytes(body)
        try:
            status, _, raw = await self._client.request(
                self._origin, "POST", self._target, headers, payload, self._time_limit
            )
        except (TimeoutError, BackendError) as exc:
            raise RouteIntegrationError(f"{type(exc).__name__}: {exc}") from exc
        return ProxyResult(status, {}, raw.decode("utf-8", "replace"))


def build_route_integrations(
    api: ApiConfig, *, client: HttpClientPool, invokers: HandlerInvokers
) -> dict[str, RouteIntegration]:
    """One integration per route key of a WebSocket API."""
    built: dict[str, RouteIntegration] = {}
    for route in api.routes:
        built[route.path] = _build(route, client, invokers)
    return built


def _build(route: RouteConfig, client: HttpClientPool, invokers: HandlerInvokers) -> RouteIntegration:
    config = route.integration
    if config.type is IntegrationType.PYTHON:
        return LambdaRouteIntegration(invokers.get(config), config)
    if config.type is IntegrationType.MOCK:
        return MockRouteIntegration(config)
    if config.type in (IntegrationType.HTTP_PROXY, IntegrationType.HTTP):
        return HttpRouteIntegration(config, client)
    raise ValueError(f"WebSocket route {route.path}: integration type {config.type} is not supported yet")

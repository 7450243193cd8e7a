"""Lambda non-proxy integration (AWS type; serverless ``integration: lambda``), reference §7.2, §7.5.

The event is the request after the ``transform_request`` phase: the request template's output
parsed as JSON, or, with no template, the event Serverless's default ``lambda`` template builds
(``body``, ``method``, ``principalId``, ``stage``, ``cognitoPoolClaims``, ``enhancedAuthContext``,
``headers``, ``query``, ``path``, ``identity``, ``stageVariables``, ``requestPath``). The function's
return value becomes a 200 JSON body; a function error becomes :class:`LambdaFunctionFailed`,
whose ``errorMessage`` the integration responses match (no response configured: 502, as for a
proxy). Timeouts and failures to run map as for proxies (504, 502).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson

from routes.integrations.base import FunctionError, InvokeFailure, LambdaInvoker
from server.errors import IntegrationFailure, IntegrationTimeout
from server.events import RequestInfo
from server.messages import HttpResponse

__all__ = ["LambdaCustomIntegration", "LambdaFunctionFailed", "default_event"]

log = logging.getLogger("portway.integration")


class LambdaFunctionFailed(Exception):
    """The function raised: ``payload`` is Lambda's error document (errorMessage, errorType,
    stackTrace), ``message`` its errorMessage (what selection patterns match)."""

    def __init__(self, message: str, payload: bytes) -> None:
        super().__init__(message)
        self.message = message
        self.payload = payload


def default_event(info: RequestInfo) -> dict[str, Any]:
    """The event of Serverless's default request template for ``integration: lambda``."""
    req = info.request
    body: Any = {}
    if req.body.strip():
        try:
            body = json.loads(req.body)
        except ValueError:
            body = req.body.decode("utf-8", "replace")
    authorizer = dict(info.authorizer or {})
    return {
        "body": body,
        "method": req.method,
        "principalId": str(authorizer.get("principalId", "")),
        "stage": info.stage,
        "cognitoPoolClaims": {"sub": ""},
        "enhancedAuthContext": {k: v for k, v in authorizer.items() if k not in ("principalId", "claims")},
        "headers": dict(req.headers),
        "query": dict(parse_qsl(req.query_string, keep_blank_values=True)),
        "path": dict(info.path_parameters),
        "identity": {"sourceIp": req.source_ip, "userAgent": req.header("user-agent") or ""},
        "stageVariables": dict(info.stage_variables),
        "requestPath": info.resource,
    }


class LambdaCustomIntegration:
    def __init__(
        self, invoker: LambdaInvoker, *, timeout_ms: int, templated: bool, function_name: str = ""
    ) -> None:
        self._invoker = invoker
        self._timeout_s = timeout_ms / 1000
        self._templated = templated
        self._name = function_name

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        if self._templated:
            try:
                event: Any = orjson.loads(info.request.body) if info.request.body.strip() else {}
            except orjson.JSONDecodeError:
                event = info.request.body.decode("utf-8", "replace")
        else:
            event = default_event(info)
        try:
            result = await self._invoker.invoke_event(
                event, request_id=info.request_id, timeout_s=self._timeout_s
            )
        except TimeoutError as exc:
            log.warning("%s: Task timed out after %.2f seconds", self._name, self._timeout_s)
            raise IntegrationTimeout() from exc
        except FunctionError as exc:
            payload = orjson.dumps(
                {
                    "errorMessage": exc.error_message,
                    "errorType": exc.error_type,
                    "stackTrace": exc.stack_trace,
                }
            )
            raise LambdaFunctionFailed(exc.error_message, payload) from exc
        except InvokeFailure as exc:
            log.error("%s: invoke failed: %s", self._name, exc)
            raise IntegrationFailure() from exc
        try:
            body = orjson.dumps(result)
        except TypeError as exc:
            raise IntegrationFailure() from exc
        return HttpResponse(200, [("Content-Type", "application/json")], body)

    async def close(self) -> None:
        return None

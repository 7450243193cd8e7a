"""Lambda proxy integration (AWS_PROXY): event in, validated proxy response out.

Drives any :class:`~routes.integrations.base.LambdaInvoker` (a Python handler in process, in worker
processes, or a real Lambda function) for REST and HTTP API routes, and maps every failure at this
boundary (aws-contract.md §0.4 / §0.5):

* the function raised, or could not be run -> ``IntegrationFailure`` (502 REST, 500 HTTP API);
* the deadline passed -> ``IntegrationTimeout`` (504 ``Endpoint request timed out``);
* a malformed proxy response -> ``MalformedProxyResponse`` (502);
* the function's reserved concurrency is in use -> ``Throttled`` (429 ``TooManyRequestsException``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from routes.integrations.base import ConcurrencyLimitExceeded, FunctionError, InvokeFailure, LambdaInvoker
from server.errors import IntegrationFailure, IntegrationTimeout, Throttled
from server.events import RequestInfo, http_v2_event, rest_v1_event
from server.messages import HttpResponse
from server.proxy_response import v1_response, v2_response
from server.trace import TRACE_HEADER

__all__ = ["LambdaProxyIntegration"]

log = logging.getLogger("portway.integration")


class LambdaProxyIntegration:
    def __init__(
        self,
        invoker: LambdaInvoker,
        *,
        payload_format: str,
        timeout_ms: int,
        http_api: bool,
        binary_media_types: Sequence[str] = (),
        function_name: str = "",
    ) -> None:
        self._invoker = invoker
        self._v2 = payload_format == "2.0"
        self._http_api = http_api
        self._timeout_s = timeout_ms / 1000
        self._binary = tuple(binary_media_types)
        self._name = function_name

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        event = http_v2_event(info) if self._v2 else rest_v1_event(info, http_api_v1=self._http_api)
        try:
            result = await self._invoker.invoke_event(
                event, request_id=info.request_id, timeout_s=self._timeout_s
            )
        except TimeoutError as exc:
            log.warning("%s: Task timed out after %.2f seconds", self._name, self._timeout_s)
            raise IntegrationTimeout() from exc
        except FunctionError as exc:
            log.error("%s: unhandled function error %s: %s", self._name, exc.error_type, exc.error_message)
            raise IntegrationFailure() from exc
        except ConcurrencyLimitExceeded as exc:
            log.warning("%s: %s", self._name, exc)
            raise Throttled() from exc
        except InvokeFailure as exc:
            log.error("%s: invoke failed: %s", self._name, exc)
            raise IntegrationFailure() from exc
        if self._v2:
            return _framed_by_gateway(v2_response(result))
        accept = info.request.header("accept")
        response = _framed_by_gateway(v1_response(result, accept=accept, binary_media_types=self._binary))
        if info.trace_id and not self._http_api:
            # REST answers from a Lambda integration carry the request's trace (recorded; MOCK
            # and HTTP_PROXY answers do not): docs/aws-contract.md, "Trace header".
            response.headers.append((TRACE_HEADER, info.trace_id))
        return response

    async def close(self) -> None:
        # The invoker is shared between routes and closed by its registry.
        return None


def _framed_by_gateway(response: HttpResponse) -> HttpResponse:
    """Drop a ``Content-Length`` the function returned: the gateway frames the body it sends, which
    differs from the function's when it sent base64 (a WSGI app's header counts the raw bytes)
    or text it re-encodes; a stale length would corrupt the connection."""
    if any(name.lower() == "content-length" for name, _ in response.headers):
        response.headers = [
            (name, value) for name, value in response.headers if name.lower() != "content-length"
        ]
    return response

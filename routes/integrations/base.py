"""The two contracts every backend adapter implements.

* :class:`Integration`: what the REST/HTTP pipeline calls. It gets the routed request
  (:class:`server.events.RequestInfo`) and returns the client :class:`server.messages.HttpResponse`,
  or raises a :class:`server.errors.GatewayError` (``IntegrationTimeout`` -> 504,
  ``IntegrationFailure`` -> 502, ...). It never raises anything else for a backend failure.
* :class:`LambdaInvoker`: runs one Lambda-style function with an event and returns the function's
  raw (JSON-compatible) result. Python handlers (in process or in worker processes) and real Lambda
  (aiobotocore) implement it; REST, HTTP API and WebSocket routes all drive it.

Invokers raise :class:`FunctionError` when the function itself raised (Lambda's "Unhandled" error),
:class:`InvokeFailure` when it could not be run at all (worker died, import failed), and
``TimeoutError`` when the deadline passed. Adapters map these to gateway errors at the boundary.
"""

from __future__ import annotations

from typing import Any, Protocol

from server.events import RequestInfo
from server.messages import HttpResponse

__all__ = ["ConcurrencyLimitExceeded", "FunctionError", "Integration", "InvokeFailure", "LambdaInvoker"]


class FunctionError(Exception):
    """The function raised. ``error_type``/``error_message`` follow Lambda's error payload."""

    def __init__(self, error_type: str, error_message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(f"{error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = stack_trace or []


class InvokeFailure(Exception):
    """The function could not be run (import error, crashed worker, invalid result encoding)."""


class ConcurrencyLimitExceeded(InvokeFailure):
    """Lambda's ``TooManyRequestsException``: the function's reserved concurrency is all in use
    (REST and HTTP API clients get 429 ``Too Many Requests``)."""


class Integration(Protocol):
    async def invoke(self, info: RequestInfo) -> HttpResponse: ...

    async def close(self) -> None: ...


class LambdaInvoker(Protocol):
    async def invoke_event(self, event: dict[str, Any], *, request_id: str, timeout_s: float) -> Any:
        """Run the function once; the result is what the handler returned (JSON-compatible).

        ``event`` must be JSON-native and is handed over: in-process handlers receive the object
        itself (no copy on the hot path), so the caller must not reuse it.
        """
        ...

    async def close(self) -> None: ...

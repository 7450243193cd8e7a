"""The one place a :class:`~server.errors.GatewayError` becomes a client response.

REST APIs get the REST bodies and statuses of aws-contract.md §0.4, HTTP APIs those of §0.5.
Every response also gets the request-id headers (:func:`add_request_headers`).

Pure core: imports no I/O library.
"""

from __future__ import annotations

import json

from server.errors import GatewayError, RequestTooLarge
from server.gateway_responses import ErrorScope, GatewayResponses
from server.messages import HttpResponse

__all__ = ["add_request_headers", "render_error"]


def render_error(
    error: GatewayError,
    *,
    http_api: bool = False,
    responses: GatewayResponses | None = None,
    scope: ErrorScope | None = None,
) -> HttpResponse:
    """Render ``error`` exactly as API Gateway would (status, body, ``x-amzn-ErrorType``).

    ``responses``: the REST API's customised gateway responses (reference §2.6), if it has any;
    ``scope``: what their templates and header mappings may read of the request."""
    if isinstance(error, RequestTooLarge):
        # Not JSON and not customisable on AWS.
        return HttpResponse(413, [("Content-Type", "text/plain")], (error.message or "").encode())
    if responses and not http_api:
        custom = responses.render(error, scope)
        if custom is not None:
            headers = [("Content-Type", custom.content_type)]
            if error.error_type:
                headers.append(("x-amzn-ErrorType", error.error_type))
            headers.extend(error.headers.items())
            headers.extend(custom.headers)
            return HttpResponse(custom.status, headers, custom.body.encode("utf-8"))

    status = error.status
    message = error.message
    if http_api:
        status = error.http_api_status or status
        if error.http_api_message is not None and message == error.default_message:
            message = error.http_api_message
    separator = ": " if error.spaced_body and not http_api else ":"
    # HTTP API bodies are always {"message":...}; REST keeps the capital M of AccessDenied (§0.4).
    key = "message" if http_api else error.message_key
    body = "{" + json.dumps(key) + separator + json.dumps(message) + "}"
    headers = [("Content-Type", "application/json")]
    if error.error_type and not http_api:
        headers.append(("x-amzn-ErrorType", error.error_type))
    headers.extend(error.headers.items())
    return HttpResponse(status, headers, body.encode("utf-8"))


def add_request_headers(
    response: HttpResponse, *, request_id: str, extended_request_id: str, http_api: bool
) -> None:
    """REST: ``x-amzn-RequestId`` + ``x-amz-apigw-id``; HTTP APIs: ``apigw-requestid``
    (aws-contract.md §0.2)."""
    if http_api:
        response.headers.append(("apigw-requestid", extended_request_id))
    else:
        response.headers.append(("x-amzn-RequestId", request_id))
        response.headers.append(("x-amz-apigw-id", extended_request_id))

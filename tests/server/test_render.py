"""Every gateway error body and header, exactly as aws-contract.md §0.4 / §0.5 records them."""

from __future__ import annotations

import pytest

from server import errors
from server.render import render_error

REST_CASES = [
    (
        errors.MissingAuthenticationToken(),
        403,
        b'{"message":"Missing Authentication Token"}',
        "MissingAuthenticationTokenException",
    ),
    (errors.InvalidApiKey(), 403, b'{"message":"Forbidden"}', "ForbiddenException"),
    (errors.Unauthorized(), 401, b'{"message":"Unauthorized"}', "UnauthorizedException"),
    (
        errors.AccessDenied(),
        403,
        b'{"Message":"User is not authorized to access this resource"}',
        "AccessDeniedException",
    ),
    (errors.Throttled(), 429, b'{"message":"Too Many Requests"}', "TooManyRequestsException"),
    (errors.QuotaExceeded(), 429, b'{"message":"Limit Exceeded"}', "LimitExceededException"),
    (errors.BadRequestBody(), 400, b'{"message":"Invalid request body"}', "BadRequestException"),
    (
        errors.BadRequestParameters("Missing required request parameters: [a, b]"),
        400,
        b'{"message":"Missing required request parameters: [a, b]"}',
        "BadRequestException",
    ),
    (
        errors.UnsupportedMediaType(),
        415,
        b'{"message":"Unsupported Media Type"}',
        "UnsupportedMediaTypeException",
    ),
    (
        errors.IntegrationFailure(),
        502,
        b'{"message": "Internal server error"}',
        "InternalServerErrorException",
    ),
    (
        errors.ApiConfigurationError(),
        500,
        b'{"message": "Internal server error"}',
        "InternalServerErrorException",
    ),
    (
        errors.IntegrationTimeout(),
        504,
        b'{"message":"Endpoint request timed out"}',
        "InternalServerErrorException",
    ),
    (errors.AuthorizerConfigurationError(), 500, b'{"message":null}', "AuthorizerConfigurationException"),
]


@pytest.mark.parametrize(("error", "status", "body", "error_type"), REST_CASES)
def test_rest_error(error: errors.GatewayError, status: int, body: bytes, error_type: str) -> None:
    response = render_error(error)
    assert response.status == status
    assert response.body == body
    assert response.header("x-amzn-ErrorType") == error_type
    assert response.header("content-type") == "application/json"


def test_integration_failure_body_is_36_bytes() -> None:
    # Recorded: Content-Length 36 for the REST integration-failure body (aws-contract.md §0.3).
    assert len(render_error(errors.IntegrationFailure()).body) == 36


def test_request_too_large_is_plain_text() -> None:
    response = render_error(errors.RequestTooLarge(10485760))
    assert response.status == 413
    assert response.body == b"HTTP content length exceeded 10485760 bytes."
    assert response.header("x-amzn-ErrorType") is None


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (errors.MissingAuthenticationToken(), 404, b'{"message":"Not Found"}'),
        (errors.NotFound(), 404, b'{"message":"Not Found"}'),
        (errors.IntegrationFailure(), 500, b'{"message":"Internal Server Error"}'),
        (errors.IntegrationTimeout(), 503, b'{"message":"Service Unavailable"}'),
        (errors.Throttled(), 429, b'{"message":"Too Many Requests"}'),
        (errors.Unauthorized(), 401, b'{"message":"Unauthorized"}'),
    ],
)
def test_http_api_error(error: errors.GatewayError, status: int, body: bytes) -> None:
    response = render_error(error, http_api=True)
    assert (response.status, response.body) == (status, body)

"""The one exception tree of the gateway, mapped 1:1 to API Gateway's gateway response types.

Every failure a client can see is one of these classes. Stages raise them; exactly one renderer
(:mod:`server.render`) turns them into HTTP responses, so bodies and headers cannot drift.

Tree (response type, default status)::

    GatewayError
    ├── ClientError                       DEFAULT_4XX
    │   ├── MissingAuthenticationToken    MISSING_AUTHENTICATION_TOKEN 403
    │   ├── NotFound                      RESOURCE_NOT_FOUND 404 (HTTP APIs: no route)
    │   ├── AccessDenied                  ACCESS_DENIED 403
    │   ├── MissingSignature              MISSING_AUTHENTICATION_TOKEN 403 (AWS_IAM route, unsigned)
    │   ├── InvalidSignature              INVALID_SIGNATURE 403 (SigV4: mismatch, expired, scope)
    │   ├── IncompleteSigV4               INVALID_SIGNATURE 403 (SigV4: a part missing)
    │   ├── UnrecognizedClient            INVALID_SIGNATURE 403 (SigV4: unknown key or session token)
    │   ├── InvalidApiKey                 INVALID_API_KEY 403
    │   ├── Unauthorized                  UNAUTHORIZED 401
    │   ├── InsufficientScope             ACCESS_DENIED 403 (HTTP API JWT: valid token, no route scope)
    │   ├── Throttled                     THROTTLED 429
    │   ├── QuotaExceeded                 QUOTA_EXCEEDED 429
    │   ├── BadRequestParameters          BAD_REQUEST_PARAMETERS 400
    │   ├── BadRequestBody                BAD_REQUEST_BODY 400
    │   ├── UnsupportedMediaType          UNSUPPORTED_MEDIA_TYPE 415
    │   ├── RequestTooLarge               REQUEST_TOO_LARGE 413 (plain text, not customisable)
    │   ├── MalformedRequest              400 (HTTP parser refusal; no gateway response type)
    │   ├── HeadersTooLarge               431 (request line + header values over 10,240 bytes)
    │   └── RequestTimeout                408 (body not received within the body timeout)
    └── ServerError                       DEFAULT_5XX
        ├── ApiConfigurationError         API_CONFIGURATION_ERROR 500
        ├── AuthorizerConfigurationError  AUTHORIZER_CONFIGURATION_ERROR 500
        ├── IntegrationFailure            INTEGRATION_FAILURE 502 (bad proxy response, handler error,
        │                                 backend unreachable)
        ├── IntegrationTimeout            INTEGRATION_TIMEOUT 504
        └── ServiceUnavailable            503 (bytes of bodies in flight at the process cap)

    @connections API (ApiGatewayManagementApi service errors, rendered by the same renderer):
    ClientError > GoneException 410, PayloadTooLargeException 413, LimitExceededException 429,
                  ForbiddenException 403

Reference: docs/aws-contract.md §0.4 (REST bodies), §0.5 (HTTP API bodies), §2.6.
This module is part of the pure core: it imports no I/O library.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessDenied",
    "ApiConfigurationError",
    "AuthorizerConfigurationError",
    "BadRequestBody",
    "BadRequestParameters",
    "ClientError",
    "ForbiddenException",
    "GatewayError",
    "GoneException",
    "HeadersTooLarge",
    "InsufficientScope",
    "IntegrationFailure",
    "IntegrationTimeout",
    "IncompleteSigV4",
    "InvalidApiKey",
    "InvalidSignature",
    "LimitExceededException",
    "MalformedRequest",
    "MissingAuthenticationToken",
    "MissingSignature",
    "NotFound",
    "PayloadTooLargeException",
    "QuotaExceeded",
    "RequestTimeout",
    "RequestTooLarge",
    "ServerError",
    "ServiceUnavailable",
    "Throttled",
    "Unauthorized",
    "UnrecognizedClient",
    "UnsupportedMediaType",
]


class GatewayError(Exception):
    """Base of every error the gateway itself answers with.

    Class attributes give the REST default; ``http_api_*`` give the HTTP API (payload 2.0 family)
    variant where AWS differs. ``message`` may be overridden per instance (validator messages).
    """

    response_type: ClassVar[str] = "DEFAULT_4XX"
    status: ClassVar[int] = 400
    error_type: ClassVar[str | None] = None  # x-amzn-ErrorType
    default_message: ClassVar[str | None] = None
    # AWS renders integration failures as '{"message": "..."}' (space after the colon) and every
    # template-rendered response as '{"message":"..."}'. Recorded: aws-contract.md §0.3.
    spaced_body: ClassVar[bool] = False
    message_key: ClassVar[str] = "message"
    http_api_status: ClassVar[int | None] = None
    http_api_message: ClassVar[str | None] = None

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.message = message if message is not None else self.default_message
        self.headers = dict(headers or {})
        super().__init__(self.message)


class ClientError(GatewayError):
    response_type = "DEFAULT_4XX"


class ServerError(GatewayError):
    response_type = "DEFAULT_5XX"
    status = 500
    error_type = "InternalServerErrorException"
    default_message: ClassVar[str | None] = "Internal server error"
    http_api_message = "Internal Server Error"


class MissingAuthenticationToken(ClientError):
    """No resource, or no method on the resource (REST). aws-contract.md §0.4."""

    response_type = "MISSING_AUTHENTICATION_TOKEN"
    status = 403
    error_type = "MissingAuthenticationTokenException"
    default_message = "Missing Authentication Token"
    http_api_status = 404
    http_api_message = "Not Found"


class IncompleteSignature(MissingAuthenticationToken):
    """No route, but the request carries a non-SigV4 ``Authorization`` header. aws-contract.md §0.4."""

    error_type = "IncompleteSignatureException"


class NotFound(ClientError):
    """HTTP API: no stage or no route matched. aws-contract.md §0.5."""

    response_type = "RESOURCE_NOT_FOUND"
    status = 404
    error_type = "NotFoundException"
    default_message = "Not Found"


class AccessDenied(ClientError):
    response_type = "ACCESS_DENIED"
    status = 403
    error_type = "AccessDeniedException"
    default_message = "User is not authorized to access this resource"
    message_key = "Message"
    # HTTP APIs answer a Lambda authorizer's deny (and isAuthorized: false) with a plain
    # {"message":"Forbidden"} (reference §0.5).
    http_api_message = "Forbidden"


# SigV4 (AWS_IAM routes, the @connections API; aws-contract.md §5.5). AWS's wording, 403, and the same
# bodies on HTTP APIs (only x-amzn-ErrorType is left out there, as for every HTTP API error).


class MissingSignature(MissingAuthenticationToken):
    """An AWS_IAM route called without any signature (no SigV4 Authorization header or query)."""

    http_api_status = 403
    http_api_message = "Forbidden"


class InvalidSignature(ClientError):
    """The signature does not match, its date is outside the allowed skew, or its credential
    scope names another region or service."""

    response_type = "INVALID_SIGNATURE"
    status = 403
    error_type = "InvalidSignatureException"
    default_message = (
        "The request signature we calculated does not match the signature you provided. Check your "
        "AWS Secret Access Key and signing method. Consult the service documentation for details."
    )


class IncompleteSigV4(ClientError):
    """A SigV4 request that lacks a part (Credential, SignedHeaders, Signature, the date, a
    presigned query parameter) or is malformed."""

    response_type = "INVALID_SIGNATURE"
    status = 403
    error_type = "IncompleteSignatureException"


class UnrecognizedClient(ClientError):
    """An access key the gateway does not know, or a session token that is not the key's."""

    response_type = "INVALID_SIGNATURE"
    status = 403
    error_type = "UnrecognizedClientException"
    default_message = "The security token included in the request is invalid."


class InvalidApiKey(ClientError):
    response_type = "INVALID_API_KEY"
    status = 403
    error_type = "ForbiddenException"
    default_message = "Forbidden"


class Unauthorized(ClientError):
    response_type = "UNAUTHORIZED"
    status = 401
    error_type = "UnauthorizedException"
    default_message = "Unauthorized"


class InsufficientScope(ClientError):
    """HTTP API JWT authorizer: the token is valid but carries none of the route's scopes: 403
    ``{"message":"Forbidden"}``, not a 401 (aws-contract.md §5.4, §0.5)."""

    response_type = "ACCESS_DENIED"
    status = 403
    error_type = "ForbiddenException"
    default_message = "Forbidden"


class Throttled(ClientError):
    response_type = "THROTTLED"
    status = 429
    error_type = "TooManyRequestsException"
    default_message = "Too Many Requests"


class QuotaExceeded(ClientError):
    response_type = "QUOTA_EXCEEDED"
    status = 429
    error_type = "LimitExceededException"
    default_message = "Limit Exceeded"


class BadRequestParameters(ClientError):
    response_type = "BAD_REQUEST_PARAMETERS"
    status = 400
    error_type = "BadRequestException"


class BadRequestBody(ClientError):
    """The body is not JSON or fails the model. ``validation_error``: the schema's complaints,
    ``$context.error.validationErrorString`` of a customised gateway response."""

    response_type = "BAD_REQUEST_BODY"
    status = 400
    error_type = "BadRequestException"
    default_message = "Invalid request body"

    def __init__(self, message: str | None = None, *, validation_error: str = "") -> None:
        super().__init__(message)
        self.validation_error = validation_error


class UnsupportedMediaType(ClientError):
    response_type = "UNSUPPORTED_MEDIA_TYPE"
    status = 415
    error_type = "UnsupportedMediaTypeException"
    default_message = "Unsupported Media Type"


class RequestTooLarge(ClientError):
    """Body over the limit. AWS answers plain text, not JSON, and it cannot be customised."""

    response_type = "REQUEST_TOO_LARGE"
    status = 413
    error_type = None

    def __init__(self, limit: int) -> None:
        super().__init__(f"HTTP content length exceeded {limit} bytes.")
        self.limit = limit


class MalformedRequest(ClientError):
    """The HTTP parser refused the request (bad framing, bad header, HTTP/0.9). No route is known,
    so the REST shape is used; the parser's details stay in the gateway's log, never the body."""

    status = 400
    error_type = "BadRequestException"
    default_message = "Bad Request"


class HeadersTooLarge(ClientError):
    """Request line plus header values over AWS's 10,240 bytes. AWS's status for this is
    unverified; 431 is HTTP's own answer (RFC 6585)."""

    status = 431
    error_type = "BadRequestException"
    default_message = "Request Header Fields Too Large"


class RequestTimeout(ClientError):
    """The body did not arrive within the body timeout (the connection is closed after it)."""

    status = 408
    default_message = "Request Timeout"


class ApiConfigurationError(ServerError):
    response_type = "API_CONFIGURATION_ERROR"
    spaced_body = True


class AuthorizerConfigurationError(ServerError):
    response_type = "AUTHORIZER_CONFIGURATION_ERROR"
    error_type = "AuthorizerConfigurationException"
    default_message = None  # AWS sends {"message":null} (unverified, aws-contract.md §0.4)


class IntegrationFailure(ServerError):
    """Malformed Lambda proxy response, handler exception, backend refused the connection: 502."""

    response_type = "INTEGRATION_FAILURE"
    status = 502
    spaced_body = True
    http_api_status = 500


class IntegrationTimeout(ServerError):
    response_type = "INTEGRATION_TIMEOUT"
    status = 504
    default_message = "Endpoint request timed out"
    # HTTP APIs answer 503 Service Unavailable on integration timeout (aws-contract.md §0.5, unverified).
    http_api_status = 503
    http_api_message = "Service Unavailable"


class ServiceUnavailable(ServerError):
    """The process already holds its cap of request-body bytes: retry later (``Retry-After``)."""

    status = 503
    error_type = "ServiceUnavailableException"
    default_message = "Service Unavailable"
    http_api_message = "Service Unavailable"


# The @connections management API (service ApiGatewayManagementApi, aws-contract.md §1.7). botocore takes
# the exception class from x-amzn-ErrorType, so boto3's client.exceptions.GoneException matches.


class GoneException(ClientError):
    response_type = "GONE"
    status = 410
    error_type = "GoneException"
    default_message = "Gone"


class PayloadTooLargeException(ClientError):
    response_type = "PAYLOAD_TOO_LARGE"
    status = 413
    error_type = "PayloadTooLargeException"
    default_message = "Payload too large"


class LimitExceededException(ClientError):
    """Also "WebSocket client-side buffer is full" (aws-contract.md §1.7)."""

    response_type = "LIMIT_EXCEEDED"
    status = 429
    error_type = "LimitExceededException"
    default_message = "Limit exceeded"


class ForbiddenException(ClientError):
    response_type = "FORBIDDEN"
    status = 403
    error_type = "ForbiddenException"
    default_message = "Forbidden"

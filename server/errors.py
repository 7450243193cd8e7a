"""The one exception tree of the gateway, mapped 1:1 to API Gateway's gateway response types.

Every failure a client can see is one of these classes. Stages raise them; exactly one renderer
(:mod:`server.render`) turns them into HTTP responses, so bodies and headers cannot drift.

Tree (response type, default status)::

    GatewayError
    ├── ClientError                       DEFAULT_4XX
    │   ├── MissingAuthenticationToken    MISSING_AUTHENTICATION_TOKEN 403
    │   ├── NotFound                      RESOURCE_NOT_FOUND 404 (HTTP APIs: no route)
    │   ├── AccessDenied                  ACCESS_DENIED 403
    │   ├── InvalidApiKey                 INVALID_API_KEY 403
    │   ├── Unauthorized                  UNAUTHORIZED 401
    │   ├── Throttled                     THROTTLED 429
    │   ├── QuotaExceeded                 QUOTA_EXCEEDED 429
    │   ├── BadRequestParameters          BAD_REQUEST_PARAMETERS 400
    │   ├── BadRequestBody                BAD_REQUEST_BODY 400
    │   ├── UnsupportedMediaType          UNSUPPORTED_MEDIA_TYPE 415
    │   └── RequestTooLarge               REQUEST_TOO_LARGE 413 (plain text, not customisable)
    └── ServerError                       DEFAULT_5XX
        ├── ApiConfigurationError         API_CONFIGURATION_ERROR 500
        ├── AuthorizerConfigurationError  AUTHORIZER_CONFIGURATION_ERROR 500
        ├── IntegrationFailure            INTEGRATION_FAILURE 502 (bad proxy response, handler error,
        │                                 backend unreachable)
        └── IntegrationTimeout            INTEGRATION_TIMEOUT 504

    @connections API (ApiGatewayManagementApi service errors, rendered by the same renderer):
    ClientError > GoneException 410, PayloadTooLargeException 413, LimitExceededException 429,
                  ForbiddenException 403

Reference: shared/reference/aws-api-gateway.md §0.4 (REST bodies), §0.5 (HTTP API bodies), §2.6.
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
    "IntegrationFailure",
    "IntegrationTimeout",
    "InvalidApiKey",
    "LimitExceededException",
    "MissingAuthenticationToken",
    "NotFound",
    "PayloadTooLargeException",
    "QuotaExceeded",
    "RequestTooLarge",
    "ServerError",
    "Throttled",
    "Unauthorized",
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
    # template-rendered response as '{"message":"..."}'. Recorded: reference §0.3.
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
    """No resource, or no method on the resource (REST). §0.4."""

    response_type = "MISSING_AUTHENTICATION_TOKEN"
    status = 403
    error_type = "MissingAuthenticationTokenException"
    default_message = "Missing Authentication Token"
    http_api_status = 404
    http_api_message = "Not Found"


class IncompleteSignature(MissingAuthenticationToken):
    """No route, but the request carries a non-SigV4 ``Authorization`` header. §0.4."""

    error_type = "IncompleteSignatureException"


class NotFound(ClientError):
    """HTTP API: no stage or no route matched. §0.5."""

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
    response_type = "BAD_REQUEST_BODY"
    status = 400
    error_type = "BadRequestException"
    default_message = "Invalid request body"


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


class ApiConfigurationError(ServerError):
    response_type = "API_CONFIGURATION_ERROR"
    spaced_body = True


class AuthorizerConfigurationError(ServerError):
    response_type = "AUTHORIZER_CONFIGURATION_ERROR"
    error_type = "AuthorizerConfigurationException"
    default_message = None  # AWS sends {"message":null} (unverified, reference §0.4)


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
    # HTTP APIs answer 503 Service Unavailable on integration timeout (reference §0.5, unverified).
    http_api_status = 503
    http_api_message = "Service Unavailable"


# The @connections management API (service ApiGatewayManagementApi, reference §1.7). botocore takes
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
    """Also "WebSocket client-side buffer is full" (§1.7)."""

    response_type = "LIMIT_EXCEEDED"
    status = 429
    error_type = "LimitExceededException"
    default_message = "Limit exceeded"


class ForbiddenException(ClientError):
    response_type = "FORBIDDEN"
    status = 403
    error_type = "ForbiddenException"
    default_message = "Forbidden"

"""What every authorizer takes and returns; pure (no I/O imports).

An authorizer answers one question for one request: who is calling, and may they call this
route? It returns an :class:`AuthResult` (the caller is allowed) or raises a leaf of the one error
tree (:mod:`server.errors`): ``Unauthorized`` (401: no or bad credentials), ``AccessDenied`` (403:
explicit deny / not allowed), ``Forbidden``-style leaves for scopes, ``AuthorizerConfigurationError``
(500: the authorizer crashed, timed out or answered something malformed). The renderer turns those
into AWS's bodies for the API kind; authorizers never build responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from server.config.model import ApiKind
from server.events import RequestInfo

__all__ = ["AuthRequest", "AuthResult", "Authorizer", "method_arn"]


@dataclass(slots=True)
class AuthRequest:
    """One request to authorize.

    ``info`` is the routed request as the pipeline knows it (for a WebSocket ``$connect``, the
    WebSocket adapter builds the same shape from the upgrade request, with ``route_key``
    ``$connect``). ``method_arn`` is the ARN policies are evaluated against:
    ``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}`` (REST, HTTP API; the
    actual path, not the template) or ``.../{stage}/{routeKey}`` (WebSocket).
    """

    info: RequestInfo
    kind: ApiKind
    method_arn: str
    region: str
    source_ip: str = ""
    connection_id: str | None = None  # WebSocket $connect


@dataclass(frozen=True, slots=True)
class AuthResult:
    """An allowed caller.

    ``authorizer``: exactly what the integration's event carries as ``requestContext.authorizer``
    for this API kind (REST/1.0 Lambda: stringified context + ``principalId`` +
    ``integrationLatency``; HTTP 2.0 Lambda: ``{"lambda": {...}}``; JWT: ``{"jwt": {"claims",
    "scopes"}}``; Cognito: ``{"claims": {...}}``), or None to leave it out (IAM).
    ``identity``: fields merged into ``requestContext.identity`` (IAM: ``accessKey``, ``user``,
    ``userArn``, ``caller``, ``accountId``). ``usage_identifier_key``: the API key value a Lambda
    authorizer chose (``apiKeySource: AUTHORIZER``).
    """

    authorizer: Mapping[str, Any] | None = None
    principal_id: str | None = None
    identity: Mapping[str, Any] | None = None
    usage_identifier_key: str | None = None


class Authorizer(Protocol):
    """Optionally ``needs_body = True`` (a class attribute): the authorize phase reads the request
    body before calling it (SigV4 signs the payload's hash); others decide without the body."""

    async def authorize(self, request: AuthRequest) -> AuthResult: ...

    async def close(self) -> None: ...


def method_arn(region: str, account_id: str, api_id: str, stage: str, method: str, path: str) -> str:
    """``arn:aws:execute-api:...:{apiId}/{stage}/{METHOD}/{path}`` as AWS writes it: the path is
    the actual request path without its leading slash (the root is ``.../{stage}/GET/``).
    WebSocket routes pass ``method=""`` and the route key as ``path``."""
    tail = f"{method}/{path.lstrip('/')}" if method else path
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{tail}"

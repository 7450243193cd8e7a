"""``authorizer`` settings of serverless.yml events -> :class:`AuthorizerConfig` (aws-contract.md §5).

The forms Serverless Framework v3 accepts, classified here and built by one function per type:

* ``http.authorizer`` (REST): ``aws_iam`` (string or ``{type: aws_iam}``); a function name of this
  service or ``{name, type: token|request, identitySource, identityValidationExpression,
  resultTtlInSeconds}`` (Lambda authorizer); a Cognito user pool ARN or ``{arn:
  arn:aws:cognito-idp:..., scopes, claims}`` / ``{type: COGNITO_USER_POOLS, ...}``;
* ``httpApi.authorizer`` (HTTP API): ``{name, scopes}`` naming ``provider.httpApi.authorizers.{name}``
  of ``type: jwt`` (``identitySource``, ``issuerUrl``, ``audience``) or ``type: request``
  (``functionName``, ``identitySource``, ``resultTtlInSeconds``, ``enableSimpleResponses``,
  ``payloadVersion``); or ``{type: aws_iam}``;
* ``websocket`` ``$connect`` ``authorizer``: a function name or ``{name, identitySource}`` (REQUEST).

Fail closed: a form Portway cannot enforce is an error with its location (``serve`` and
``validate`` refuse the file), never an open route. Pure: no I/O imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.config.errors import loc, loc_path
from server.config.model import ApiKind, AuthorizerConfig, AuthorizerType
from server.config.serverless_jwt import cognito_authorizer, http_api_jwt, names_jwt

if TYPE_CHECKING:
    from server.config.serverless_events import Build, Parts

__all__ = ["UNENFORCED_AUTHORIZER", "RouteAuth", "route_authorizer"]

UNENFORCED_AUTHORIZER = (
    "this authorizer cannot be enforced by this version of Portway; refusing to serve the route "
    "open (remove the authorizer to serve it without authentication)"
)


@dataclass(frozen=True, slots=True)
class RouteAuth:
    """An event's authorization: ``authorizer`` None = none declared; ``ok`` False = an error was
    reported (the route must not be served)."""

    authorizer: AuthorizerConfig | None = None
    scopes: tuple[str, ...] = ()
    ok: bool = True


_REFUSED = RouteAuth(ok=False)


def route_authorizer(build: Build, parts: Parts, kind: ApiKind) -> RouteAuth:
    """The authorizer declared by the event at ``parts``, for a route of API ``kind``."""
    where = (*parts, "authorizer")
    raw = build.r.get(*where)
    if raw is None:
        return RouteAuth()
    location = loc(_location(parts), "authorizer")
    return _BY_FORM[_form(raw, kind)](build, where, raw, kind, location)


def _location(parts: Parts) -> str:
    return loc_path(parts)


def _form(raw: Any, kind: ApiKind) -> str:
    """Which family the declaration belongs to: iam, cognito, jwt-or-request (HTTP API named
    authorizer), lambda (a function of this service), or unknown."""
    text = raw if isinstance(raw, str) else None
    settings = raw if isinstance(raw, dict) else {}
    declared_type = str(settings.get("type", "")).lower()
    arn = str(settings.get("arn", "") if settings else (text or ""))
    if (text or "").lower() == "aws_iam" or declared_type == "aws_iam":
        return "iam"
    if "cognito-idp" in arn or declared_type == "cognito_user_pools":
        return "cognito"
    if kind is ApiKind.HTTP:
        return "http_api_named"
    return "lambda"


def _lambda(build: Build, where: Parts, raw: Any, kind: ApiKind, location: str) -> RouteAuth:
    """REST TOKEN/REQUEST and WebSocket $connect REQUEST Lambda authorizers."""
    build.issues.error(location, UNENFORCED_AUTHORIZER)
    return _REFUSED


def _http_api_named(build: Build, where: Parts, raw: Any, kind: ApiKind, location: str) -> RouteAuth:
    """``{name, scopes}`` -> ``provider.httpApi.authorizers.{name}``: ``type: jwt`` (JWT) or
    ``type: request`` (Lambda REQUEST, payload 1.0/2.0)."""
    if _names_jwt(build, raw):
        return _http_api_jwt(build, where, raw, kind, location)
    build.issues.error(location, UNENFORCED_AUTHORIZER)
    return _REFUSED


def _cognito(build: Build, where: Parts, raw: Any, kind: ApiKind, location: str) -> RouteAuth:
    """REST ``COGNITO_USER_POOLS``: the pool ARN(s), ``scopes`` (route authorization scopes)."""
    built = cognito_authorizer(build, where, raw, kind, location)
    return _REFUSED if built is None else RouteAuth(*built)


# One declaration for every aws_iam route: the authorizer holds no per-route state.
_AWS_IAM = AuthorizerConfig(name="aws_iam", type=AuthorizerType.AWS_IAM)


def _iam(build: Build, where: Parts, raw: Any, kind: ApiKind, location: str) -> RouteAuth:
    """``aws_iam``: SigV4 against the gateway's configured access keys (``custom.portway.iam``)."""
    if kind is ApiKind.WEBSOCKET:
        # Serverless Framework has no aws_iam form for websocket events.
        build.issues.error(location, UNENFORCED_AUTHORIZER)
        return _REFUSED
    return RouteAuth(_AWS_IAM)


def _names_jwt(build: Build, raw: Any) -> bool:
    return names_jwt(build, raw)


def _http_api_jwt(build: Build, where: Parts, raw: Any, kind: ApiKind, location: str) -> RouteAuth:
    """``provider.httpApi.authorizers.{name}`` without ``type`` (serverless's JWT form) or with
    ``type: jwt``: ``identitySource``, ``issuerUrl``, ``audience``; the route's ``scopes``."""
    built = http_api_jwt(build, where, raw, location)
    return _REFUSED if built is None else RouteAuth(*built)


_BY_FORM = {"lambda": _lambda, "http_api_named": _http_api_named, "cognito": _cognito, "iam": _iam}

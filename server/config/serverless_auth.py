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

from server.config.authorizer_rules import check_authorizer
from server.config.errors import loc, loc_path
from server.config.model import (
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    IntegrationConfig,
    IntegrationType,
    frozen_map,
)
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


# Defaults of Serverless Framework v3 (and AWS's): the header a Lambda authorizer reads.
_DEFAULT_SOURCE = {
    ApiKind.REST: "method.request.header.Authorization",
    ApiKind.WEBSOCKET: "route.request.header.Auth",
}
_LAMBDA_ARN = "arn:aws:lambda:"


def _lambda(build: Build, where: Parts, raw: Any, kind: ApiKind, location: str) -> RouteAuth:
    """REST TOKEN/REQUEST and WebSocket $connect REQUEST Lambda authorizers: a function name of
    this service (or the ARN of one), or ``{name | arn, type, identitySource,
    identityValidationExpression, resultTtlInSeconds}``."""
    r = build.r
    settings = raw if isinstance(raw, dict) else {}
    if raw is not None and not isinstance(raw, str | dict):
        build.issues.error(location, "expected a function name or {name: ..., type: token|request, ...}")
        return _REFUSED
    reference = raw if isinstance(raw, str) else r.get(*where, "name") or r.get(*where, "arn")
    at = location if isinstance(raw, str) else loc(location, "name" if "name" in settings else "arn")
    function = _function_named(build, reference, at)
    if function is None:
        return _REFUSED
    type_name = str(r.get(*where, "type") or ("request" if kind is ApiKind.WEBSOCKET else "token")).lower()
    if type_name not in ("token", "request"):
        build.issues.error(loc(location, "type"), f"type {type_name!r}: use token or request")
        return _REFUSED
    sources = _sources(r.get_deep(*where, "identitySource")) or (_DEFAULT_SOURCE[kind],)
    validation = r.get(*where, "identityValidationExpression")
    # AWS caches WebSocket authorizer results only when asked (ApiGatewayV2 has no TTL for them).
    ttl = r.get(*where, "resultTtlInSeconds")
    if ttl is None:
        ttl = 0 if kind is ApiKind.WEBSOCKET else 300
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        build.issues.error(loc(location, "resultTtlInSeconds"), f"{ttl!r} is not a whole number of seconds")
        return _REFUSED
    authorizer = AuthorizerConfig(
        name=function.function_name,
        type=AuthorizerType.TOKEN if type_name == "token" else AuthorizerType.REQUEST,
        function=function,
        identity_sources=sources,
        identity_validation=str(validation) if validation is not None else None,
        ttl_s=ttl,
    )
    return _checked(build, authorizer, kind, location, ())


def _http_api_named(build: Build, where: Parts, raw: Any, kind: ApiKind, location: str) -> RouteAuth:
    """``{name, scopes}`` -> ``provider.httpApi.authorizers.{name}``: ``type: jwt`` (JWT) or
    ``type: request`` (Lambda REQUEST, payload 1.0/2.0)."""
    name = raw.get("name") if isinstance(raw, dict) else raw
    declared = ("provider", "httpApi", "authorizers", str(name))
    if isinstance(name, str) and str(build.r.get(*declared, "type") or "").lower() == "request":
        return _http_api_request(build, declared, location)
    if _names_jwt(build, raw):
        return _http_api_jwt(build, where, raw, kind, location)
    build.issues.error(location, UNENFORCED_AUTHORIZER)
    return _REFUSED


def _http_api_request(build: Build, declared: Parts, route_location: str) -> RouteAuth:
    """``provider.httpApi.authorizers.{name}`` of ``type: request``: ``functionName`` (or
    ``functionArn`` of a function of this service), ``identitySource``, ``resultTtlInSeconds``,
    ``enableSimpleResponses``, ``payloadVersion``."""
    r, location = build.r, loc_path(declared)
    name = str(declared[-1])
    field = "functionName" if r.get(*declared, "functionName") is not None else "functionArn"
    function = _function_named(build, r.get(*declared, field), loc(location, field))
    if function is None:
        return _REFUSED
    payload = str(r.get(*declared, "payloadVersion") or "2.0")
    ttl = r.get(*declared, "resultTtlInSeconds")
    if ttl is None:
        ttl = 300
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        build.issues.error(loc(location, "resultTtlInSeconds"), f"{ttl!r} is not a whole number of seconds")
        return _REFUSED
    authorizer = AuthorizerConfig(
        name=name,
        type=AuthorizerType.REQUEST,
        function=function,
        identity_sources=_sources(r.get_deep(*declared, "identitySource")),
        ttl_s=ttl,
        payload_format={"1": "1.0", "2": "2.0"}.get(payload, payload),
        simple_responses=r.get(*declared, "enableSimpleResponses") is True,
    )
    return _checked(build, authorizer, ApiKind.HTTP, location, ())


def _sources(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list):
        return tuple(str(item).strip() for item in raw)
    return ()


def _function_named(build: Build, reference: Any, location: str) -> IntegrationConfig | None:
    """The authorizer's function: a function of this service, by its key in ``functions:`` or its
    deployed name, or the ARN of one (another account's Lambda cannot run here)."""
    if not isinstance(reference, str) or not reference:
        build.issues.error(location, "name the authorizer's function (a function of this service)")
        return None
    name = reference
    if reference.startswith(_LAMBDA_ARN):
        name = reference.split(":function:", 1)[-1].split(":", 1)[0]
    function = build.function_named(name) if name in build.function_keys else None
    if function is None:  # by its deployed name (service-stage-key, or its `name:`)
        every = (build.function_named(key) for key in build.function_keys)
        function = next((f for f in every if f is not None and f.name == name), None)
    if function is None:
        if reference.startswith(_LAMBDA_ARN):
            build.issues.error(
                location,
                f"{reference}: a Lambda function outside this service cannot run locally "
                "(name a function of this service)",
            )
        else:
            known = ", ".join(sorted(build.function_keys)) or "none"
            build.issues.error(location, f"no function {name!r} in this service (functions: {known})")
        return None
    return IntegrationConfig(
        type=IntegrationType.PYTHON,
        timeout_ms=max(50, int(min(function.timeout_s, 30) * 1000)),
        handler=function.handler,
        code_dir=function.code_dir,
        function_name=function.name,
        environment=frozen_map(function.environment),
        memory_mb=function.memory_mb,
    )


def _checked(
    build: Build, authorizer: AuthorizerConfig, kind: ApiKind, location: str, scopes: tuple[str, ...]
) -> RouteAuth:
    """Check it, and share one instance per authorizer name and API kind (one result cache, as
    on AWS); the same name declared with other settings is an error."""
    if not check_authorizer(authorizer, kind, location, lambda key: loc(location, key), build.issues):
        return _REFUSED
    known = build.authorizers.setdefault((kind, authorizer.name), (authorizer, location))
    if known[0] != authorizer:
        build.issues.error(
            location, f"authorizer {authorizer.name!r} is declared with other settings at {known[1]}"
        )
        return _REFUSED
    return RouteAuth(known[0], scopes)


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

"""serverless.yml JWT (``httpApi``) and Cognito (``http``) authorizers -> :class:`AuthorizerConfig`
(aws-contract.md §5.3, §5.4). Called by :mod:`server.config.serverless_auth`; pure (no I/O imports).

HTTP API::

    provider:
      httpApi:
        authorizers:
          users:                        # no type (serverless's JWT form), or type: jwt
            identitySource: $request.header.Authorization   # the default
            issuerUrl: https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc
            audience: [client-id]       # one or a list (at most 50)
    functions:
      f:
        events:
          - httpApi: {method: get, path: /me, authorizer: {name: users, scopes: [profile]}}

REST (Cognito): ``authorizer: arn:aws:cognito-idp:...``, ``{arn, scopes, name, identitySource}``,
or ``{type: COGNITO_USER_POOLS, authorizerId: {Ref: Res}, scopes}`` where ``Res`` is an
``AWS::ApiGateway::Authorizer`` in ``resources.Resources`` with literal ``ProviderARNs``.

Local issuers: the real issuer (Cognito, Auth0, ...) is a remote service, so
``custom.portway.authorizers.{name}`` may give ``issuer`` (the ``iss`` tokens must carry, replacing
``issuerUrl`` / the pool's), ``jwksUri`` (where the keys are, instead of discovery) and, for
Cognito, ``audience`` (app client ids to require; AWS knows the pool's clients, Portway cannot).
A Cognito authorizer's name is its ``name``, else its user pool id.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from server.auth.cognito import USER_POOL_ARN, pool_id
from server.config.errors import loc, loc_path
from server.config.model import ApiKind, AuthorizerConfig, AuthorizerType

if TYPE_CHECKING:
    from server.config.serverless_events import Build, Parts

__all__ = ["cognito_authorizer", "http_api_jwt", "names_jwt"]

MAX_AUDIENCES = 50  # AWS's JwtConfiguration.Audience limit
MAX_SCOPES = 10  # AWS's authorization scopes per route
_HTTP_SOURCE = re.compile(r"\$request\.(header|querystring)\.[^\s.,]+")
_REST_SOURCE = re.compile(r"method\.request\.header\.[^\s.,]+")
_AUTHORIZERS = ("provider", "httpApi", "authorizers")
_OVERRIDES = ("custom", "portway", "authorizers")

Built = tuple[AuthorizerConfig, tuple[str, ...]]


def _name(raw: Any) -> Any:
    return raw if isinstance(raw, str) else raw.get("name") if isinstance(raw, dict) else None


def names_jwt(build: Build, raw: Any) -> bool:
    """Whether an ``httpApi.authorizer`` names a JWT authorizer (no ``type``, or ``type: jwt``).
    An undeclared name counts as one, so that its error comes from :func:`http_api_jwt`."""
    name = _name(raw)
    settings = build.r.get(*_AUTHORIZERS, name) if isinstance(name, str) else None
    if not isinstance(settings, dict):
        return True
    declared = build.r.get(*_AUTHORIZERS, name, "type")
    return declared is None or str(declared).lower() == "jwt"


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    return None


def _scopes(build: Build, raw: Any, location: str) -> tuple[str, ...] | None:
    value = raw.get("scopes") if isinstance(raw, dict) else None
    if value is None:
        return ()
    scopes = _strings(value)
    if scopes is None or len(scopes) > MAX_SCOPES:
        build.issues.error(loc(location, "scopes"), f"a list of 1 to {MAX_SCOPES} scope names")
        return None
    return scopes


def _overrides(build: Build, name: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
    """``custom.portway.authorizers.{name}``: ``issuer``/``jwksUri`` (URLs), ``audience`` (one
    or a list); None once errors are reported."""
    where = (*_OVERRIDES, name)
    raw = build.r.get_deep(*where)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        build.issues.error(loc_path(where), f"a mapping of {', '.join(allowed)}")
        return None
    found: dict[str, Any] = {}
    for key, value in raw.items():
        at = loc_path((*where, key))
        if key not in allowed:
            build.issues.error(at, f"unknown setting (use {', '.join(allowed)})")
        elif key == "audience":
            if _strings(value) is None:
                build.issues.error(at, "one app client id or a list of them")
            else:
                found[key] = _strings(value)
        elif not isinstance(value, str) or not value.startswith(("https://", "http://")):
            build.issues.error(at, "an http(s) URL")
        else:
            found[key] = value
    return found if len(found) == len(raw) else None


def http_api_jwt(build: Build, where: Parts, raw: Any, location: str) -> Built | None:
    """The route's JWT authorizer and scopes; None once errors are reported."""
    raw = build.r.get_deep(*where)
    name = _name(raw)
    if not isinstance(name, str) or not name:
        build.issues.error(location, "name the authorizer: {name: NAME, scopes: [...]}")
        return None
    settings = build.r.get_deep(*_AUTHORIZERS, name)
    if not isinstance(settings, dict):
        declared = build.r.get(*_AUTHORIZERS)
        names = ", ".join(sorted(declared)) if isinstance(declared, dict) else "none"
        build.issues.error(
            location, f"no authorizer {name!r} in provider.httpApi.authorizers (declared: {names})"
        )
        return None
    scopes = _scopes(build, raw, location)
    config = build.jwt_authorizers.get(f"jwt:{name}") or _jwt_config(build, name, settings)
    if config is None or scopes is None:
        return None
    build.jwt_authorizers[f"jwt:{name}"] = config
    return config, scopes


def _jwt_config(build: Build, name: str, settings: dict[str, Any]) -> AuthorizerConfig | None:
    at = loc_path((*_AUTHORIZERS, name))
    ok = True
    issuer = settings.get("issuerUrl")
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
        build.issues.error(loc(at, "issuerUrl"), "the issuer's URL (https://...) is required")
        ok = False
    audiences = _strings(settings.get("audience"))
    if audiences is None or len(audiences) > MAX_AUDIENCES:
        build.issues.error(loc(at, "audience"), f"one audience or a list of 1 to {MAX_AUDIENCES}")
        ok = False
    source = settings.get("identitySource", "$request.header.Authorization")
    if not isinstance(source, str) or not _HTTP_SOURCE.fullmatch(source):
        build.issues.error(loc(at, "identitySource"), "one $request.header.NAME or $request.querystring.NAME")
        ok = False
    overrides = _overrides(build, name, ("issuer", "jwksUri"))
    if not ok or overrides is None or not isinstance(issuer, str) or audiences is None:
        return None
    return AuthorizerConfig(
        name,
        AuthorizerType.JWT,
        identity_sources=(str(source),),
        issuer=overrides.get("issuer", issuer),
        audiences=audiences,
        jwks_uri=overrides.get("jwksUri"),
    )


def cognito_authorizer(build: Build, where: Parts, raw: Any, kind: ApiKind, location: str) -> Built | None:
    """A REST route's Cognito user pool authorizer and scopes; None once errors are reported."""
    if kind is not ApiKind.REST:
        build.issues.error(
            location,
            "a Cognito user pool authorizer applies to REST APIs (http events); an httpApi route "
            "uses a jwt authorizer whose issuerUrl is the pool's",
        )
        return None
    raw = build.r.get_deep(*where)
    settings: dict[str, Any] = raw if isinstance(raw, dict) else {}
    arns = _pool_arns(build, raw, settings, location)
    scopes = _scopes(build, raw, location)
    source = settings.get("identitySource", "method.request.header.Authorization")
    if not isinstance(source, str) or not _REST_SOURCE.fullmatch(source):
        build.issues.error(loc(location, "identitySource"), "one method.request.header.NAME")
        return None
    if arns is None or scopes is None:
        return None
    given = settings.get("name")
    name = given if isinstance(given, str) and given else pool_id(arns[0])
    key = f"cognito:{name}"
    config = build.jwt_authorizers.get(key)
    if config is None:
        overrides = _overrides(build, name, ("issuer", "jwksUri", "audience"))
        if overrides is None:
            return None
        config = AuthorizerConfig(
            name,
            AuthorizerType.COGNITO_USER_POOLS,
            identity_sources=(source,),
            user_pool_arns=arns,
            issuer=overrides.get("issuer"),
            jwks_uri=overrides.get("jwksUri"),
            audiences=overrides.get("audience", ()),
        )
        build.jwt_authorizers[key] = config
    return config, scopes


def _pool_arns(build: Build, raw: Any, settings: dict[str, Any], location: str) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        found: Any = raw
    elif "arn" in settings:
        found = settings["arn"]
    else:
        found = _authorizer_resource(build, settings.get("authorizerId"), location)
        if found is None:
            return None
    arns = _strings(found)
    if arns is None or not all(USER_POOL_ARN.fullmatch(arn) for arn in arns):
        build.issues.error(
            location, "a Cognito user pool ARN (arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID)"
        )
        return None
    return arns


def _authorizer_resource(build: Build, authorizer_id: Any, location: str) -> Any:
    """``{Ref: Name}`` -> ``resources.Resources.Name.Properties.ProviderARNs`` (literal ARNs)."""
    ref = authorizer_id.get("Ref") if isinstance(authorizer_id, dict) else None
    resource = build.r.get_deep("resources", "Resources", ref) if isinstance(ref, str) else None
    if not isinstance(resource, dict):
        resource = {}
    properties = resource.get("Properties")
    if not isinstance(properties, dict) or resource.get("Type") != "AWS::ApiGateway::Authorizer":
        build.issues.error(
            loc(location, "authorizerId"),
            "cannot be resolved locally: use {Ref: NAME} of an AWS::ApiGateway::Authorizer in "
            "resources.Resources, or give the user pool as arn:",
        )
        return None
    arns = properties.get("ProviderARNs")
    if _strings(arns) is None:
        build.issues.error(
            loc(location, "authorizerId"),
            f"resources.Resources.{ref}.Properties.ProviderARNs must list the user pool ARNs literally",
        )
        return None
    return arns

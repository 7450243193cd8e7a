"""HTTP API ``JWT`` and REST ``COGNITO_USER_POOLS`` authorizers (aws-contract.md §5.3, §5.4).

Both take a bearer token from the identity source, verify it against the issuer's JWKS
(:mod:`server.auth.jwt_verify`, keys from :mod:`server.auth.jwks`) and check the route's scopes.
They differ in what a refusal looks like and in what reaches the integration:

* ``JWT`` (HTTP API): 401 ``Unauthorized`` with ``www-authenticate: Bearer scope="" error=
  "invalid_token" error_description="..."``; a valid token without one of the route's scopes is
  403 ``Forbidden``. Claims as ``requestContext.authorizer.jwt`` (payload 2.0) or
  ``requestContext.authorizer`` ``{claims, scopes}`` (payload 1.0).
* ``COGNITO_USER_POOLS`` (REST): 401 ``Unauthorized`` for every refusal. A route without scopes
  needs an ID token (``token_use`` ``id``), a route with scopes an access token carrying one of
  them. Claims as ``requestContext.authorizer.claims``.

Verified tokens are cached (bounded LRU, :data:`TOKEN_CACHE_SIZE`): a token seen before costs a
dict lookup and the time checks instead of an RSA verification. A cached token is still refused
once it expires; one whose key was since removed from the JWKS stays valid until its ``exp``.
An issuer whose keys cannot be fetched (and none are cached) makes every token a 401: the
caller cannot be authenticated, and AWS's JWT authorizers answer only 401 or 403.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from server.auth.base import AuthRequest, AuthResult
from server.auth.cognito import cognito_issuer
from server.auth.factory import BUILDERS, AuthDeps
from server.auth.jwks import JwksSource, KeysUnavailable
from server.auth.jwt_claims import cognito_claims, http_api_authorizer, http_api_claims
from server.auth.jwt_verify import (
    JwtRules,
    TokenRejected,
    UnknownKey,
    check_claims,
    has_scope,
    time_window,
    token_scopes,
    verify_token,
)
from server.config.model import ApiConfig, AuthorizerConfig, AuthorizerType
from server.errors import InsufficientScope, Unauthorized
from server.events import RequestInfo, parse_query

__all__ = [
    "TOKEN_CACHE_SIZE",
    "JwtAuthorizer",
    "build_cognito",
    "build_jwt",
]

log = logging.getLogger(__name__)

TOKEN_CACHE_SIZE = 10_000

_BEARER = "bearer "
_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


@dataclass(frozen=True, slots=True)
class _Route:
    scopes: tuple[str, ...]
    payload_format: str


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token that passed :func:`verify_token`, with what each later request needs precomputed:
    a hit costs two comparisons with ``now`` instead of an RSA verification."""

    rules: JwtRules
    claims: dict[str, Any]
    shaped: dict[str, str]  # claims as the integration sees them (copied per request)
    scopes: tuple[str, ...]
    subject: str | None
    valid_from: float  # nbf/iat minus the leeway
    valid_until: float  # exp plus the leeway


@dataclass(frozen=True, slots=True)
class _Issuer:
    rules: JwtRules
    keys: JwksSource


class _Identity:
    """Where the token is: one header (case-insensitive) or one query-string parameter."""

    def __init__(self, source: str) -> None:
        header = re.fullmatch(r"(?:\$request|method\.request)\.header\.(.+)", source)
        query = re.fullmatch(r"(?:\$request|method\.request)\.querystring\.(.+)", source)
        if header is None and query is None:
            raise ValueError(f"unsupported identity source for a JWT authorizer: {source!r}")
        self.header = header[1] if header else None
        self.query = query[1] if query else None

    def token(self, info: RequestInfo) -> str | None:
        if self.header is not None:
            raw = info.request.header(self.header)
        else:
            raw = next(
                (v for k, v in reversed(parse_query(info.request.query_string)) if k == self.query), None
            )
        if raw is None:
            return None
        raw = raw.strip()
        if raw[: len(_BEARER)].lower() == _BEARER:  # the prefix is optional (§5.4)
            raw = raw[len(_BEARER) :].strip()
        return raw or None


class JwtAuthorizer:
    def __init__(
        self,
        config: AuthorizerConfig,
        api: ApiConfig,
        issuers: list[_Issuer],
        *,
        cognito: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = config.name
        self._cognito = cognito
        self._issuers = {issuer.rules.issuer: issuer for issuer in issuers}
        self._only = issuers[0] if len(issuers) == 1 else None
        self._identity = _Identity(
            config.identity_sources[0] if config.identity_sources else "$request.header.Authorization"
        )
        # Every route of the API, not only those naming this authorizer by identity: a route
        # missing here must never be served with no scopes (a KeyError is a 500, not an open door).
        self._routes = {
            route.route_key: _Route(route.authorization_scopes, route.integration.payload_format)
            for route in api.routes
        }
        self._clock = clock
        self._aud_pattern = (
            re.compile(config.identity_validation) if cognito and config.identity_validation else None
        )
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    @property
    def sources(self) -> list[JwksSource]:
        return [issuer.keys for issuer in self._issuers.values()]

    def _refuse(self, description: str) -> Unauthorized:
        if self._cognito:
            return Unauthorized()
        safe = _UNSAFE.sub("", description)[:200]
        challenge = f'Bearer scope="" error="invalid_token" error_description="{safe}"'
        return Unauthorized(headers={"www-authenticate": challenge})

    async def authorize(self, request: AuthRequest) -> AuthResult:
        info = request.info
        token = self._identity.token(info)
        if token is None:
            raise self._refuse("the token is missing")
        now = self._clock()
        try:
            verified = await self._verified_token(token, now)
        except TokenRejected as rejected:
            raise self._refuse(rejected.description) from None
        route = self._routes[info.route_key]
        if self._cognito:
            return self._cognito_result(verified, route)
        if not has_scope(verified.scopes, route.scopes):
            raise InsufficientScope()
        scopes = list(verified.scopes) if route.scopes else None
        return AuthResult(
            authorizer=http_api_authorizer(verified.shaped, scopes, route.payload_format),
            principal_id=verified.subject,
        )

    def _cognito_result(self, verified: _Verified, route: _Route) -> AuthResult:
        # Reference §5.3: without scopes only an ID token passes; with scopes only an access
        # token holding one of them.
        wanted = "access" if route.scopes else "id"
        if verified.claims.get("token_use") != wanted or not has_scope(verified.scopes, route.scopes):
            raise Unauthorized()
        if self._aud_pattern is not None:
            # identityValidationExpression: for Cognito, a regex the token's aud must match.
            aud = verified.claims.get("aud")
            if not isinstance(aud, str) or self._aud_pattern.fullmatch(aud) is None:
                raise Unauthorized()
        return AuthResult(authorizer={"claims": dict(verified.shaped)}, principal_id=verified.subject)

    async def _verified_token(self, token: str, now: float) -> _Verified:
        hit = self._verified.get(token)
        if hit is not None:
            if not hit.valid_from <= now < hit.valid_until:
                check_claims(hit.claims, hit.rules, now)  # raises, with the precise description
            self._verified.move_to_end(token)
            return hit
        issuer = self._issuer_of(token)
        try:
            claims = verify_token(token, await self._keys(issuer), issuer.rules, now)
        except UnknownKey as unknown:
            keys = await self._keys(issuer, refresh_for=unknown.kid)
            claims = verify_token(token, keys, issuer.rules, now)
        valid_from, valid_until = time_window(claims)
        entry = _Verified(
            issuer.rules,
            claims,
            cognito_claims(claims) if self._cognito else http_api_claims(claims),
            tuple(token_scopes(claims)),
            _text(claims.get("sub")),
            valid_from,
            valid_until,
        )
        self._verified[token] = entry
        if len(self._verified) > TOKEN_CACHE_SIZE:
            self._verified.popitem(last=False)
        return entry

    def _issuer_of(self, token: str) -> _Issuer:
        if self._only is not None:
            return self._only
        # Several user pools: the unverified iss only picks which pool's keys verify the token.
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRejected("the token could not be decoded") from None
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise TokenRejected("the token does not have a valid issuer")
        return issuer

    async def _keys(self, issuer: _Issuer, refresh_for: str | None = None) -> Mapping[str, Any]:
        try:
            if refresh_for is not None:
                return await issuer.keys.refresh_for(refresh_for)
            return await issuer.keys.keys()
        except KeysUnavailable:
            log.warning(
                "authorizer %s: no signing keys from %s; refusing the token", self.name, issuer.rules.issuer
            )
            raise TokenRejected("the issuer's signing keys are unavailable") from None

    async def close(self) -> None:
        for source in self.sources:
            await source.close()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def build_jwt(config: AuthorizerConfig, api: ApiConfig, deps: AuthDeps) -> JwtAuthorizer:
    """HTTP API ``type: jwt``: the configured issuer and audiences; keys from ``jwks_uri`` or
    the issuer's discovery document."""
    if not config.issuer or not config.audiences:
        raise ValueError(f"JWT authorizer {config.name!r} needs an issuer and at least one audience")
    rules = JwtRules(config.issuer, frozenset(config.audiences), tuple(config.algorithms))
    source = JwksSource(config.issuer, config.jwks_uri)
    return JwtAuthorizer(config, api, [_Issuer(rules, source)], cognito=False)


def build_cognito(config: AuthorizerConfig, api: ApiConfig, deps: AuthDeps) -> JwtAuthorizer:
    """REST ``COGNITO_USER_POOLS``: one issuer per user pool ARN (``https://cognito-idp.{region}.
    amazonaws.com/{poolId}``), or the configured ``issuer`` (a local stand-in for the pool);
    keys from ``jwks_uri`` or ``{issuer}/.well-known/jwks.json`` (Cognito has no need of
    discovery). Audiences: the configured app client ids, if any (Portway cannot list a pool's
    app clients, so without them any client of the pool is accepted)."""
    issuers = [config.issuer] if config.issuer else [cognito_issuer(arn) for arn in config.user_pool_arns]
    if not issuers:
        raise ValueError(f"Cognito authorizer {config.name!r} needs a user pool ARN or an issuer")
    built = []
    for issuer in issuers:
        rules = JwtRules(issuer, frozenset(config.audiences), tuple(config.algorithms))
        jwks_uri = config.jwks_uri or issuer.rstrip("/") + "/.well-known/jwks.json"
        built.append(_Issuer(rules, JwksSource(issuer, jwks_uri)))
    return JwtAuthorizer(config, api, built, cognito=True)


BUILDERS[AuthorizerType.JWT] = build_jwt
BUILDERS[AuthorizerType.COGNITO_USER_POOLS] = build_cognito

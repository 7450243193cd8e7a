"""JWT verification for HTTP API ``jwt`` and REST ``COGNITO_USER_POOLS`` authorizers (reference
§5.3, §5.4). No I/O: the key set and ``now`` come in as arguments (the keys are fetched by
:mod:`server.auth.jwks`).

Order of the checks, each refusal a :class:`TokenRejected` carrying the ``error_description``
HTTP APIs send in ``www-authenticate``:

1. the token is three base64url parts with a JSON header;
2. ``alg`` is one of the authorizer's pinned algorithms (RSA only by default, as AWS: never
   ``none``, never HMAC, so an HS256 token "signed" with the RSA public key cannot pass);
3. ``kid`` names a key of the issuer's JWKS (:class:`UnknownKey` lets the caller refetch the
   JWKS once, rate-limited); the key comes only from the JWKS: ``jwk``, ``jku``, ``x5u`` and
   ``x5c`` in the token's header are ignored;
4. the signature, with that key and the header's (pinned) algorithm;
5. the claims: ``iss`` equals the issuer; ``aud`` or ``client_id`` is one of the audiences;
   ``exp`` is required and after ``now``; ``nbf`` and ``iat``, when present, not after ``now``;
   each time check allows :data:`LEEWAY_S` of clock skew between issuer and gateway.

Scopes (per route) and Cognito's ``token_use`` rule are separate functions, since a scope
mismatch is a 403 on HTTP APIs, not a 401.

pyjwt does the JOSE parts (base64url, the signature); the claim rules are ours, because they take
``now`` and AWS's rules differ from pyjwt's (``aud`` *or* ``client_id``; ``exp`` required).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm

__all__ = [
    "LEEWAY_S",
    "RSA_ALGORITHMS",
    "JwtRules",
    "KeySet",
    "TokenRejected",
    "UnknownKey",
    "check_claims",
    "has_scope",
    "time_window",
    "parse_jwks",
    "token_scopes",
    "verify_token",
]

# Clock skew allowed on exp/nbf/iat, in seconds. AWS publishes none; a few seconds absorbs the
# drift between an issuer's clock and this host's without keeping expired tokens alive for long.
LEEWAY_S = 5

RSA_ALGORITHMS = ("RS256", "RS384", "RS512")

# The only JWS header parameters a key could be taken from; never read (listed for the docs/tests).
IGNORED_KEY_HEADERS = ("jwk", "jku", "x5u", "x5c")


class TokenRejected(Exception):
    """The token is not acceptable: 401. ``description`` is AWS's ``error_description``."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class UnknownKey(TokenRejected):
    """The token's ``kid`` is not in the key set (a refreshed JWKS may have it)."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"unknown signing key {kid!r}")
        self.kid = kid


@dataclass(frozen=True, slots=True)
class VerifyKey:
    key: Any  # a cryptography public key object
    algorithm: str | None  # the JWK's own ``alg``, when it names one


KeySet = Mapping[str, VerifyKey]


@dataclass(frozen=True, slots=True)
class JwtRules:
    """What one authorizer accepts. ``audiences`` empty: no audience check (Cognito without
    configured app clients; a JWT authorizer always has at least one). ``algorithms``: a subset
    of :data:`RSA_ALGORITHMS` (the key set holds RSA keys only; anything else is refused here,
    so a configuration naming HS256 cannot make an RSA public key an HMAC secret)."""

    issuer: str
    audiences: frozenset[str]
    algorithms: tuple[str, ...] = RSA_ALGORITHMS

    def __post_init__(self) -> None:
        if not self.algorithms or not set(self.algorithms) <= set(RSA_ALGORITHMS):
            raise ValueError(f"algorithms must be among {', '.join(RSA_ALGORITHMS)}: {self.algorithms}")


def parse_jwks(document: Any) -> dict[str, VerifyKey]:
    """``{"keys": [...]}`` -> ``kid -> key``: RSA signing keys with a ``kid`` only; other keys
    (encryption keys, EC keys, keys without a ``kid``) are skipped, since a token can only pick a
    key by ``kid`` and only RSA algorithms are accepted. Raises ValueError when the document is
    not a JWKS at all."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no keys list)")
    keys: dict[str, VerifyKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kid, use, alg = entry.get("kid"), entry.get("use"), entry.get("alg")
        if entry.get("kty") != "RSA" or not isinstance(kid, str) or use not in (None, "sig"):
            continue
        try:
            key = RSAAlgorithm.from_jwk(dict(entry))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # one malformed key must not hide the others
        if isinstance(key, RSAPrivateKey):
            key = key.public_key()  # a JWKS should never publish a private key; use its public half
        keys[kid] = VerifyKey(key, alg if isinstance(alg, str) else None)
    return keys


_JWS = jwt.PyJWS()


def _header(token: str) -> Mapping[str, Any]:
    if token.count(".") != 2:
        raise TokenRejected("token contains an invalid number of segments")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("the token could not be decoded") from None
    return header


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"the token's {name} claim is not a number")
    return float(value)


def _audience_ok(claims: Mapping[str, Any], audiences: frozenset[str]) -> bool:
    aud = claims.get("aud")
    candidates: list[Any] = list(aud) if isinstance(aud, list) else [aud]
    candidates.append(claims.get("client_id"))
    return any(isinstance(value, str) and value in audiences for value in candidates)


def verify_token(token: str, keys: KeySet, rules: JwtRules, now: float) -> dict[str, Any]:
    """The token's claims if it passes every rule above, else :class:`TokenRejected`."""
    header = _header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in rules.algorithms:
        raise TokenRejected(f"signing method {alg} is invalid")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("the token has no kid")
    key = keys.get(kid)
    if key is None:
        raise UnknownKey(kid)
    if key.algorithm is not None and key.algorithm != alg:
        raise TokenRejected(f"signing method {alg} is invalid for key {kid!r}")
    try:
        decoded = _JWS.decode_complete(token, key.key, algorithms=[alg])
    except jwt.InvalidSignatureError:
        raise TokenRejected("the token's signature is invalid") from None
    except (jwt.PyJWTError, TypeError, ValueError):
        raise TokenRejected("the token could not be decoded") from None
    try:
        claims = json.loads(decoded["payload"])
    except (ValueError, UnicodeDecodeError):
        raise TokenRejected("the token's payload is not JSON") from None
    if not isinstance(claims, dict):
        raise TokenRejected("the token's payload is not a JSON object")
    check_claims(claims, rules, now)
    return claims


def check_claims(claims: Mapping[str, Any], rules: JwtRules, now: float) -> None:
    """The claim rules alone (the signature already checked): iss, audience, exp/nbf/iat."""
    if claims.get("iss") != rules.issuer:
        raise TokenRejected("the token does not have a valid issuer")
    if rules.audiences and not _audience_ok(claims, rules.audiences):
        raise TokenRejected("the token does not have a valid audience")
    exp = _number(claims, "exp")
    if exp is None:
        raise TokenRejected("the token has no expiry")
    if now - LEEWAY_S >= exp:
        raise TokenRejected("the token has expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + LEEWAY_S:
        raise TokenRejected("the token is not valid yet")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + LEEWAY_S:
        raise TokenRejected("the token was issued in the future")


def time_window(claims: Mapping[str, Any]) -> tuple[float, float]:
    """``(from, until)``: the ``now`` values a token that passed :func:`check_claims` stays valid
    for (``from <= now < until``), leeway included; what a cache of verified tokens rechecks."""
    exp = _number(claims, "exp")
    starts = [value for value in (_number(claims, "nbf"), _number(claims, "iat")) if value is not None]
    valid_from = max(starts) - LEEWAY_S if starts else float("-inf")
    return valid_from, (exp if exp is not None else float("-inf")) + LEEWAY_S


def token_scopes(claims: Mapping[str, Any]) -> list[str]:
    """The token's scopes: ``scope`` (space-separated, OAuth 2.0) or ``scp`` (a list or a
    space-separated string, as some issuers write it)."""
    found: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.extend(value.split())
        elif isinstance(value, list):
            found.extend(item for item in value if isinstance(item, str))
    return found


def has_scope(granted: Iterable[str], required: Sequence[str]) -> bool:
    """A route with scopes needs at least one of them; a route without scopes needs none."""
    return not required or not set(required).isdisjoint(granted)

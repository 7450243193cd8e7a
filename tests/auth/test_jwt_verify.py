"""The pure JWT verifier (server/auth/jwt_verify.py) and claim shaping (jwt_claims.py): every
claim rule with ``now`` passed in, the leeway edges, and the ``alg`` attacks (aws-contract.md §5.3, §5.4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from server.auth.jwt_claims import cognito_claims, http_api_authorizer, http_api_claims
from server.auth.jwt_verify import (
    LEEWAY_S,
    JwtRules,
    TokenRejected,
    UnknownKey,
    check_claims,
    has_scope,
    parse_jwks,
    time_window,
    token_scopes,
    verify_token,
)
from tests.auth.jwt_issuer import public_jwk, rsa_key

ISS = "https://issuer.example"
NOW = 1_744_630_000
RULES = JwtRules(ISS, frozenset({"client-a", "client-b"}))
KEYS = parse_jwks({"keys": [public_jwk("k1", rsa_key("k1"))]})


def mint(
    key: Any = None,
    *,
    kid: str | None = "k1",
    algorithm: str = "RS256",
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    body: dict[str, Any] = {"iss": ISS, "aud": "client-a", "iat": NOW - 10, "exp": NOW + 300}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    extra = dict(headers or {})
    if kid is not None:
        extra["kid"] = kid
    return jwt.encode(body, key if key is not None else rsa_key("k1"), algorithm=algorithm, headers=extra)


def rejected(token: str, now: float = NOW, rules: JwtRules = RULES) -> str:
    with pytest.raises(TokenRejected) as caught:
        verify_token(token, KEYS, rules, now)
    return caught.value.description


def test_a_valid_token_gives_its_claims() -> None:
    claims = verify_token(mint(sub="u1"), KEYS, RULES, NOW)
    assert claims["sub"] == "u1" and claims["aud"] == "client-a"


def test_issuer_must_match_exactly() -> None:
    assert rejected(mint(iss=ISS + "/")) == "the token does not have a valid issuer"
    assert rejected(mint(iss=None)) == "the token does not have a valid issuer"


def test_audience_or_client_id_must_be_listed() -> None:
    assert rejected(mint(aud="other")) == "the token does not have a valid audience"
    verify_token(mint(aud=["x", "client-b"]), KEYS, RULES, NOW)  # one of a list is enough
    verify_token(mint(aud=None, client_id="client-b"), KEYS, RULES, NOW)  # access tokens
    assert rejected(mint(aud=None, client_id="nope")) == "the token does not have a valid audience"
    assert rejected(mint(aud=None)) == "the token does not have a valid audience"
    # No audiences configured (Cognito without app client ids): not checked.
    verify_token(mint(aud="any"), KEYS, JwtRules(ISS, frozenset()), NOW)


def test_exp_is_required_and_honours_the_leeway() -> None:
    assert rejected(mint(exp=None)) == "the token has no expiry"
    token = mint(exp=NOW)
    verify_token(token, KEYS, RULES, NOW + LEEWAY_S - 1)  # within the leeway
    assert rejected(token, now=NOW + LEEWAY_S) == "the token has expired"
    assert rejected(mint(exp="tomorrow")) == "the token's exp claim is not a number"
    assert rejected(mint(exp=True)) == "the token's exp claim is not a number"


def test_nbf_and_iat_must_not_be_in_the_future_beyond_the_leeway() -> None:
    verify_token(mint(nbf=NOW + LEEWAY_S), KEYS, RULES, NOW)
    assert rejected(mint(nbf=NOW + LEEWAY_S + 1)) == "the token is not valid yet"
    verify_token(mint(iat=NOW + LEEWAY_S), KEYS, RULES, NOW)
    assert rejected(mint(iat=NOW + LEEWAY_S + 1)) == "the token was issued in the future"
    verify_token(mint(iat=None), KEYS, RULES, NOW)  # iat and nbf are optional


def test_scopes_from_scope_or_scp() -> None:
    assert token_scopes({"scope": "read write"}) == ["read", "write"]
    assert token_scopes({"scp": ["read", 3, "admin"]}) == ["read", "admin"]
    assert token_scopes({"scp": "a b"}) == ["a", "b"]
    assert token_scopes({}) == []
    assert has_scope([], ())  # a route without scopes needs none
    assert has_scope(["read", "write"], ("admin", "write"))
    assert not has_scope(["read"], ("admin",))


# --- the alg attacks -------------------------------------------------------------------


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


def test_alg_none_is_refused() -> None:
    claims = {"iss": ISS, "aud": "client-a", "exp": NOW + 300}
    for alg in ("none", "None", "NONE"):
        assert rejected(_unsigned({"alg": alg, "kid": "k1"}, claims)) == f"signing method {alg} is invalid"


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    """The classic RS/HS confusion: the attacker HMACs with the (public) RSA key as secret."""
    pem = (
        rsa_key("k1")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    claims = {"iss": ISS, "aud": "client-a", "exp": NOW + 300}
    signing_input = _unsigned(header, claims)[:-1].encode()
    signature = base64.urlsafe_b64encode(hmac.new(pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    token = (signing_input + b"." + signature).decode()
    assert rejected(token) == "signing method HS256 is invalid"
    # An authorizer cannot even be configured to accept HMAC (the keys are RSA public keys).
    with pytest.raises(ValueError):
        JwtRules(ISS, RULES.audiences, ("RS256", "HS256"))
    with pytest.raises(ValueError):
        JwtRules(ISS, RULES.audiences, ())


def test_a_key_embedded_in_the_header_is_ignored() -> None:
    attacker = rsa_key("attacker")
    jwk = public_jwk("k1", attacker)
    for headers in ({"jwk": jwk}, {"jku": "https://evil.example/jwks"}, {"x5u": "https://evil.example/c"}):
        token = mint(attacker, headers=headers)
        assert rejected(token) == "the token's signature is invalid"


def test_kid_must_name_a_published_key() -> None:
    assert rejected(mint(kid=None)) == "the token has no kid"
    with pytest.raises(UnknownKey) as caught:
        verify_token(mint(rsa_key("k2"), kid="k2"), KEYS, RULES, NOW)
    assert caught.value.kid == "k2"


def test_algorithms_are_pinned_per_authorizer() -> None:
    token = mint(algorithm="RS384")
    verify_token(token, KEYS, RULES, NOW)  # RS256/384/512 by default
    assert (
        rejected(token, rules=JwtRules(ISS, RULES.audiences, ("RS256",))) == "signing method RS384 is invalid"
    )
    # A JWK that names its alg only verifies that alg.
    keys = parse_jwks({"keys": [public_jwk("k1", rsa_key("k1"), alg="RS512")]})
    with pytest.raises(TokenRejected):
        verify_token(mint(), keys, RULES, NOW)


def test_tampered_payload_fails_the_signature() -> None:
    head, _, sig = mint().split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"iss": ISS, "aud": "client-a", "exp": NOW + 9999}).encode())
    assert rejected(f"{head}.{forged.rstrip(b'=').decode()}.{sig}") == "the token's signature is invalid"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!.??.##"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(TokenRejected):
        verify_token(token, KEYS, RULES, NOW)


def test_parse_jwks_keeps_rsa_signing_keys_with_a_kid() -> None:
    good = public_jwk("k1", rsa_key("k1"))
    keys = parse_jwks(
        {
            "keys": [
                good,
                {**public_jwk("enc", rsa_key("k1")), "use": "enc"},
                {k: v for k, v in public_jwk("nokid", rsa_key("k1")).items() if k != "kid"},
                {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
                {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                "junk",
            ]
        }
    )
    assert list(keys) == ["k1"]
    with pytest.raises(ValueError):
        parse_jwks({"nokeys": []})


# --- claims as integrations receive them -----------------------------------------------


def test_http_api_claims_are_stringified_as_aws_does() -> None:
    claims = {
        "sub": "u1",
        "exp": 1744634011,
        "ratio": 1.5,
        "whole": 2.0,
        "admin": True,
        "groups": ["a", "b", 3],
        "address": {"city": "Oslo", "zip": 1},
        "gone": None,
    }
    assert http_api_claims(claims) == {
        "sub": "u1",
        "exp": "1744634011",
        "ratio": "1.5",
        "whole": "2",
        "admin": "true",
        "groups": "[a b 3]",
        "address": '{"city":"Oslo","zip":1}',
    }
    shaped = http_api_claims(claims)
    v2 = http_api_authorizer(shaped, ["read"], "2.0")
    assert v2 == {"jwt": {"claims": shaped, "scopes": ["read"]}}
    assert v2["jwt"]["claims"] is not shaped  # each event gets its own copy
    assert http_api_authorizer(shaped, None, "1.0") == {"claims": shaped, "scopes": None}


def test_cognito_claims_are_strings_with_java_dates() -> None:
    shaped = cognito_claims(
        {
            "exp": 1744634011,
            "iat": 1744630411,
            "auth_time": 1744630411,
            "email_verified": True,
            "cognito:groups": ["admin"],
        }
    )
    assert shaped == {
        "exp": "Mon Apr 14 12:33:31 UTC 2025",
        "iat": "Mon Apr 14 11:33:31 UTC 2025",
        "auth_time": "1744630411",
        "email_verified": "true",
        "cognito:groups": "admin",
    }
    assert cognito_claims({"iat": 1741000000})["iat"] == "Mon Mar 03 11:06:40 UTC 2025"  # zero-padded day


def test_the_verifier_adds_no_io_beyond_what_pyjwt_imports() -> None:
    """jwt_verify/jwt_claims do no I/O. pyjwt itself imports urllib (its unused PyJWKClient), so the
    pure-core list cannot hold them; this checks they add nothing of their own."""
    code = (
        "import sys, jwt; before = set(sys.modules); "
        "import server.auth.jwt_verify, server.auth.jwt_claims; "
        "print(','.join(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] in ('aiohttp','redis','asyncio','socket','subprocess','uvloop','ssl','urllib'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("nbf", [None, NOW - 100, NOW + 3])
@pytest.mark.parametrize("iat", [None, NOW - 50, NOW + 4])
def test_the_cached_time_window_agrees_with_the_claim_rules(nbf: int | None, iat: int | None) -> None:
    """The verified-token cache rechecks only ``from <= now < until``: it must accept exactly the
    ``now`` values check_claims accepts."""
    claims = {"iss": ISS, "aud": "client-a", "exp": NOW + 10, "nbf": nbf, "iat": iat}
    claims = {k: v for k, v in claims.items() if v is not None}
    valid_from, valid_until = time_window(claims)
    for now in range(NOW - 120, NOW + 30):
        try:
            check_claims(claims, RULES, now)
            accepted = True
        except TokenRejected:
            accepted = False
        assert accepted == (valid_from <= now < valid_until), now

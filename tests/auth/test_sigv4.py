"""SigV4 verification (server/auth/sigv4.py) against requests signed by botocore's signers."""

from __future__ import annotations

import time

import pytest

from server.auth.sigv4 import SigningSecret, Verified, verify
from server.errors import (
    GatewayError,
    IncompleteSigV4,
    InvalidSignature,
    MissingSignature,
    UnrecognizedClient,
)
from server.messages import HttpRequest
from tests.auth.signing import KEY_ID, REGION, SECRET, http_request, sign

URL = "http://gw.test:8080/dev/pets/a%3Db/x?b=2&a=1&a=0&e=&s=%2F%20x"
TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN//+="
KEYS = {KEY_ID: SigningSecret(SECRET), "ASIATEMP": SigningSecret("temp-secret", TOKEN)}


def check(request: HttpRequest, *, now: float | None = None, region: str = REGION) -> Verified:
    return verify(request, secrets=KEYS.get, region=region, now=time.time() if now is None else now)


def refused(request: HttpRequest, **kw: float) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        check(request, **kw)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_header_form_signed_by_botocore_verifies(method: str) -> None:
    body = b'{"name": "rex"}' if method == "POST" else b""
    url, headers = sign(method, URL, body=body, headers={"Content-Type": "application/json"})
    verified = check(http_request(method, url, headers, body))
    assert verified.access_key_id == KEY_ID and not verified.presigned


def test_root_path_trailing_slash_and_dot_segments_verify() -> None:
    for url in ("http://gw.test/", "http://gw.test/dev/a/", "http://gw.test/dev//a/./b/../c"):
        signed_url, headers = sign("GET", url)
        check(http_request("GET", signed_url, headers))


def test_presigned_query_form_verifies() -> None:
    url, headers = sign("GET", "http://gw.test/dev?room=1", presign=True, expires=60)
    assert "X-Amz-Signature=" in url and not any(k.lower() == "authorization" for k, _ in headers)
    verified = check(http_request("GET", url, headers))
    assert verified.presigned


def test_session_tokens_header_and_presigned() -> None:
    for presign in (False, True):
        url, headers = sign("GET", URL, key_id="ASIATEMP", secret="temp-secret", token=TOKEN, presign=presign)
        assert check(http_request("GET", url, headers)).access_key_id == "ASIATEMP"
        # Validly signed, but with another token or none: the key's session is not proven.
        for other in ("another-token", None):
            url, headers = sign(
                "GET", URL, key_id="ASIATEMP", secret="temp-secret", token=other, presign=presign
            )
            assert isinstance(refused(http_request("GET", url, headers)), UnrecognizedClient)
    # The token changed after signing: it is signed (header and query alike), so the signature fails.
    url, headers = sign("GET", URL, key_id="ASIATEMP", secret="temp-secret", token=TOKEN)
    forged = [(k, "another-token" if k == "X-Amz-Security-Token" else v) for k, v in headers]
    assert isinstance(refused(http_request("GET", url, forged)), InvalidSignature)
    # A long-term key used with a token it does not have.
    url, headers = sign("GET", URL, token=TOKEN)
    assert isinstance(refused(http_request("GET", url, headers)), UnrecognizedClient)


def test_unknown_access_key() -> None:
    url, headers = sign("GET", URL, key_id="AKIDUNKNOWN")
    error = refused(http_request("GET", url, headers))
    assert isinstance(error, UnrecognizedClient)
    assert error.status == 403 and error.error_type == "UnrecognizedClientException"
    assert error.message == "The security token included in the request is invalid."


def test_wrong_secret_gets_aws_mismatch_message() -> None:
    url, headers = sign("GET", URL, secret="not-the-secret")
    error = refused(http_request("GET", url, headers))
    assert isinstance(error, InvalidSignature) and error.error_type == "InvalidSignatureException"
    assert error.message is not None
    assert error.message.startswith(
        "The request signature we calculated does not match the signature you provided. Check your AWS "
        "Secret Access Key and signing method. Consult the service documentation for details.\n\n"
        "The Canonical String for this request should have been\n'GET\n/dev/pets/a%253Db/x\n"
        "a=0&a=1&b=2&e=&s=%2F%20x\n"
    )


def test_tampered_body_path_query_and_method_are_refused() -> None:
    body = b'{"amount": 1}'
    url, headers = sign("POST", URL, body=body)
    assert isinstance(refused(http_request("POST", url, headers, b'{"amount": 1000}')), InvalidSignature)
    assert isinstance(refused(http_request("PUT", url, headers, body)), InvalidSignature)
    assert isinstance(
        refused(http_request("POST", url.replace("/x?", "/y?"), headers, body)), InvalidSignature
    )
    assert isinstance(
        refused(http_request("POST", url.replace("b=2", "b=3"), headers, body)), InvalidSignature
    )
    # A signed header changed on the way (host is always signed).
    moved = [(k, "evil.test" if k.lower() == "host" else v) for k, v in headers]
    assert isinstance(refused(http_request("POST", url, moved, body)), InvalidSignature)


def test_declared_payload_hash_must_be_the_bodys_unless_unsigned() -> None:
    url, headers = sign("POST", URL, body=b"abc", headers={"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
    check(http_request("POST", url, headers, b"anything else"))  # the signer chose not to sign it
    lying = [*headers, ("X-Amz-Content-Sha256", "0" * 64)]
    lying = [(k, v) for k, v in lying if not (k == "X-Amz-Content-Sha256" and v == "UNSIGNED-PAYLOAD")]
    error = refused(http_request("POST", url, lying, b"abc"))
    assert error.message == "The provided 'x-amz-content-sha256' header does not match what was computed."


def test_wrong_region_and_service() -> None:
    url, headers = sign("GET", URL, region="eu-west-1")
    error = refused(http_request("GET", url, headers))
    assert error.message == "Credential should be scoped to a valid region, not 'eu-west-1'. "
    url, headers = sign("GET", URL, service="apigateway")
    error = refused(http_request("GET", url, headers))
    assert error.message == "Credential should be scoped to correct service: 'execute-api'. "


@pytest.mark.parametrize("offset", [-360.0, 360.0])
def test_replay_outside_the_skew_is_refused(offset: float) -> None:
    url, headers = sign("GET", URL, clock_offset_s=offset)  # the signer's clock is 6 minutes off
    error = refused(http_request("GET", url, headers))
    assert isinstance(error, InvalidSignature) and error.status == 403
    assert error.message is not None
    if offset < 0:
        assert error.message.startswith("Signature expired: ") and error.message.endswith(" - 5 min.)")
        assert " is now earlier than " in error.message
    else:
        assert (
            error.message.startswith("Signature not yet current: ")
            and " is still later than " in error.message
        )
    # Within the skew: fine.
    url, headers = sign("GET", URL, clock_offset_s=offset * 0.75)
    check(http_request("GET", url, headers))


def test_expired_signature_message_shape() -> None:
    url, headers = sign("GET", URL)
    request = http_request("GET", url, headers)
    signed_at = next(v for k, v in headers if k == "X-Amz-Date")
    later = time.mktime(time.strptime(signed_at, "%Y%m%dT%H%M%SZ")) - time.timezone + 3600
    error = refused(request, now=later)
    expected_now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(later))
    earliest = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(later - 300))
    assert (
        error.message
        == f"Signature expired: {signed_at} is now earlier than {earliest} ({expected_now} - 5 min.)"
    )


def test_presigned_url_expires() -> None:
    url, headers = sign("GET", URL, presign=True, expires=60)
    request = http_request("GET", url, headers)
    check(request, now=time.time() + 50)
    error = refused(request, now=time.time() + 120)
    assert isinstance(error, InvalidSignature) and error.message is not None
    assert error.message.startswith("Signature expired: ")


def test_no_signature_and_incomplete_ones() -> None:
    assert isinstance(refused(http_request("GET", URL, [("Host", "gw.test:8080")])), MissingSignature)
    bearer = refused(http_request("GET", URL, [("Host", "gw.test:8080"), ("Authorization", "Bearer abc")]))
    assert isinstance(bearer, IncompleteSigV4) and bearer.error_type == "IncompleteSignatureException"
    assert bearer.message is not None and bearer.message.startswith(
        "Invalid key=value pair (missing equal-sign)"
    )
    partial = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request"
    error = refused(http_request("GET", URL, [("Host", "gw.test:8080"), ("Authorization", partial)]))
    assert error.message == (
        "Authorization header requires 'Signature' parameter. Authorization header requires "
        "'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a "
        f"'Date' header. Authorization={partial}"
    )
    url, headers = sign("GET", URL, presign=True)
    stripped = "&".join(p for p in url.split("&") if not p.startswith(("X-Amz-Credential", "X-Amz-Date")))
    error = refused(http_request("GET", stripped, headers))
    assert error.message == (
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must "
        "include 'X-Amz-Date'. Re-examine the query-string parameters."
    )


def _with_authorization(headers: list[tuple[str, str]], old: str, new: str) -> list[tuple[str, str]]:
    return [(k, v.replace(old, new) if k == "Authorization" else v) for k, v in headers]


def test_aws_checks_in_order_with_its_messages() -> None:
    url, headers = sign("GET", URL)
    both = refused(http_request("GET", url + "&X-Amz-Algorithm=AWS4-HMAC-SHA256", headers))
    assert isinstance(both, InvalidSignature)
    assert (
        both.message
        == "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
    )
    other = refused(
        http_request("GET", url, _with_authorization(headers, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"))
    )
    assert isinstance(other, IncompleteSigV4)
    assert (
        other.message == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). "
    )
    four = refused(http_request("GET", url, _with_authorization(headers, "/aws4_request", "")))
    assert isinstance(four, IncompleteSigV4) and four.message is not None
    assert four.message.startswith(
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/"
    )
    scope = refused(
        http_request(
            "GET", url, _with_authorization(headers, "us-east-1/execute-api/aws4_request", "eu-west-1/s3/x")
        )
    )
    assert isinstance(scope, InvalidSignature)
    assert scope.message == (
        "Credential should be scoped to a valid region, not 'eu-west-1'. Credential should be scoped to "
        "correct service: 'execute-api'. Credential should be scoped with a valid terminator: "
        "'aws4_request', not 'x'. "
    )


def test_host_must_be_signed() -> None:
    url, headers = sign("GET", URL)
    auth = next(v for k, v in headers if k == "Authorization").replace(
        "SignedHeaders=host;", "SignedHeaders="
    )
    unsigned_host = [(k, auth if k == "Authorization" else v) for k, v in headers]
    error = refused(http_request("GET", url, unsigned_host))
    assert error.message == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


@pytest.mark.parametrize(
    "bad", ["2026-03-01T12:00:00Z", "20260301T120000", "20261301T120000Z", "２０２６0301T120000Z"]
)
def test_malformed_dates_are_refused_with_aws_message(bad: str) -> None:
    url, headers = sign("GET", URL)
    changed = [(k, bad if k == "X-Amz-Date" else v) for k, v in headers]
    error = refused(http_request("GET", url, changed))
    assert isinstance(error, IncompleteSigV4)
    assert error.message == (
        f"Date must be in ISO-8601 'basic format'. Got '{bad}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )

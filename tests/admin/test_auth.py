"""Admin authentication: SigV4 recomputed with botocore, bearer tokens, nothing configured."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from server.admin.auth import AdminCredentials, AuthFailure, authenticate

CREDS = AdminCredentials(
    region="eu-west-1", token="tok-123", access_key_id="AKID", secret_access_key="secret"
)
URL = "http://gw.example:8080/@admin/usageplans/p%201/usage?startDate=2026-03-01&endDate=2026-03-02"
NOW = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)


def signed(
    *,
    method: str = "GET",
    url: str = URL,
    body: bytes = b"",
    secret: str = "secret",
    key: str = "AKID",
    region: str = "eu-west-1",
    service: str = "apigateway",
    headers: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    request: Any = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    request.headers["Host"] = "gw.example:8080"
    request.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
    signer = SigV4Auth(Credentials(key, secret), service, region)
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    return [(name, str(value)) for name, value in request.headers.items()]


def check(
    headers: list[tuple[str, str]], *, method: str = "GET", body: bytes = b"", url: str = URL, **kw: Any
) -> AuthFailure | None:
    now = kw.pop("now", NOW.timestamp())
    return authenticate(kw.pop("creds", CREDS), method=method, url=url, headers=headers, body=body, now=now)


def code(result: AuthFailure | None) -> str | None:
    return None if result is None else result.error_type


def test_a_valid_signature_passes() -> None:
    assert check(signed()) is None
    body = b'{"patchOperations": []}'
    headers = signed(method="PATCH", body=body, headers={"Content-Type": "application/json"})
    assert check(headers, method="PATCH", body=body) is None
    # Headers the client did not sign (a proxy added them) do not matter.
    assert check([*signed(), ("X-Forwarded-For", "10.0.0.1"), ("User-Agent", "x")]) is None
    sha = hashlib.sha256(body).hexdigest()
    with_sha = signed(method="POST", body=body, headers={"X-Amz-Content-SHA256": sha})
    assert check(with_sha, method="POST", body=body) is None


def test_tampering_is_refused() -> None:
    headers = signed()
    assert code(check(headers, url=URL.replace("2026-03-02", "2026-03-09"))) == "InvalidSignatureException"
    assert code(check(headers, method="DELETE")) == "InvalidSignatureException"
    body = b'{"name": "x"}'
    post = signed(method="POST", body=body)
    assert code(check(post, method="POST", body=b'{"name": "y"}')) == "InvalidSignatureException"
    forged = signed(method="POST", body=body, headers={"X-Amz-Content-SHA256": "0" * 64})
    assert code(check(forged, method="POST", body=body)) == "InvalidSignatureException"
    assert code(check(signed(secret="wrong"))) == "InvalidSignatureException"


def test_scope_key_and_clock() -> None:
    assert code(check(signed(key="OTHER"))) == "UnrecognizedClientException"
    assert code(check(signed(region="us-east-1"))) == "InvalidSignatureException"
    assert code(check(signed(service="execute-api"))) == "InvalidSignatureException"
    assert check(signed(), now=NOW.timestamp() + 299) is None
    late = check(signed(), now=NOW.timestamp() + 301)
    assert late is not None and late.message.startswith("Signature expired")
    assert code(check(signed(), now=NOW.timestamp() - 301)) == "InvalidSignatureException"


def test_incomplete_signatures() -> None:
    headers = signed()
    no_date = [(k, v) for k, v in headers if k.lower() != "x-amz-date"]
    assert code(check(no_date)) == "IncompleteSignatureException"
    mangled = [
        (k, "AWS4-HMAC-SHA256 Credential=AKID/x") if k == "Authorization" else (k, v) for k, v in headers
    ]
    assert code(check(mangled)) == "IncompleteSignatureException"
    bad_date = [(k, "yesterday") if k.lower() == "x-amz-date" else (k, v) for k, v in headers]
    assert code(check(bad_date)) == "IncompleteSignatureException"


def test_bearer_tokens() -> None:
    assert check([("Authorization", "Bearer tok-123")]) is None
    assert code(check([("authorization", "bearer tok-1234")])) == "UnrecognizedClientException"
    assert code(check([])) == "MissingAuthenticationTokenException"
    assert code(check([("Authorization", "Basic eDp5")])) == "MissingAuthenticationTokenException"
    sigv4_only = AdminCredentials(region="eu-west-1", access_key_id="AKID", secret_access_key="secret")
    assert (
        code(check([("Authorization", "Bearer tok-123")], creds=sigv4_only)) == "UnrecognizedClientException"
    )
    token_only = AdminCredentials(region="eu-west-1", token="tok-123")
    assert code(check(signed(), creds=token_only)) == "UnrecognizedClientException"


def test_nothing_configured_is_disabled() -> None:
    off = AdminCredentials.from_env({"PORTWAY_ADMIN_ACCESS_KEY_ID": "only-half"}, "eu-west-1")
    assert not off.enabled
    assert code(check([("Authorization", "Bearer tok-123")], creds=off)) == "AccessDeniedException"
    on = AdminCredentials.from_env({"PORTWAY_ADMIN_TOKEN": "t"}, "eu-west-1")
    assert on.enabled and not on.sigv4

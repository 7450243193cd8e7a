"""Who may call the admin API: AWS Signature Version 4 and/or a bearer token.

Configured from the environment once, at start-up (:meth:`AdminCredentials.from_env`):

* ``PORTWAY_ADMIN_ACCESS_KEY_ID`` and ``PORTWAY_ADMIN_SECRET_ACCESS_KEY``: SigV4 requests
  (service ``apigateway``, the gateway's region), as boto3 and the AWS CLI sign them. The
  signature is recomputed with botocore's ``SigV4Auth`` over the request as received (method,
  raw path and query, the headers named in ``SignedHeaders``, the body) at the request's
  ``X-Amz-Date``, and compared in constant time; a date more than :data:`MAX_SKEW_S` from the
  gateway's clock is refused (as AWS does), and so is an ``X-Amz-Content-SHA256`` that is not
  the body's digest;
* ``PORTWAY_ADMIN_TOKEN``: ``Authorization: Bearer <token>``, compared in constant time.

Either or both. Neither: the admin API is off and answers every request 403.

Pure core: imports no I/O library (botocore is imported on the first SigV4 request).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_SKEW_S", "SERVICE", "AdminCredentials", "AuthFailure", "authenticate"]

MAX_SKEW_S = 300.0
SERVICE = "apigateway"
_ALGORITHM = "AWS4-HMAC-SHA256"
_BAD_TOKEN = "The security token included in the request is invalid."


@dataclass(frozen=True, slots=True)
class AdminCredentials:
    region: str
    token: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], region: str) -> AdminCredentials:
        return cls(
            region=region,
            token=environ.get("PORTWAY_ADMIN_TOKEN") or None,
            access_key_id=environ.get("PORTWAY_ADMIN_ACCESS_KEY_ID") or None,
            secret_access_key=environ.get("PORTWAY_ADMIN_SECRET_ACCESS_KEY") or None,
        )

    @property
    def sigv4(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)

    @property
    def enabled(self) -> bool:
        return self.sigv4 or bool(self.token)


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request is refused: ``error_type`` for ``x-amzn-ErrorType`` (403)."""

    error_type: str
    message: str


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def authenticate(
    creds: AdminCredentials,
    *,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    now: float | None = None,
) -> AuthFailure | None:
    """None when the request is authenticated, else why not. ``url``: scheme, the ``Host``
    header, raw path and raw query exactly as received."""
    if not creds.enabled:
        return AuthFailure("AccessDeniedException", "The Portway admin API is disabled")
    authorization = (_header(headers, "authorization") or "").strip()
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() == "bearer":
        given = rest.strip().encode()
        if creds.token and hmac.compare_digest(given, creds.token.encode()):
            return None
        return AuthFailure("UnrecognizedClientException", _BAD_TOKEN)
    if scheme == _ALGORITHM:
        if not creds.sigv4:
            return AuthFailure("UnrecognizedClientException", _BAD_TOKEN)
        return _check_sigv4(creds, method, url, headers, body, rest, time.time() if now is None else now)
    return AuthFailure("MissingAuthenticationTokenException", "Missing Authentication Token")


def _parse_authorization(rest: str) -> dict[str, str] | None:
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            return None
        parts[name.strip()] = value.strip()
    if not {"Credential", "SignedHeaders", "Signature"} <= parts.keys():
        return None
    return parts


def _check_sigv4(
    creds: AdminCredentials,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    rest: str,
    now: float,
) -> AuthFailure | None:
    incomplete = AuthFailure(
        "IncompleteSignatureException",
        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders', "
        "and an X-Amz-Date header",
    )
    parts = _parse_authorization(rest)
    amz_date = _header(headers, "x-amz-date")
    if parts is None or not amz_date:
        return incomplete
    scope = parts["Credential"].split("/")
    signed = [name for name in parts["SignedHeaders"].lower().split(";") if name]
    if len(scope) != 5 or "host" not in signed or "x-amz-date" not in signed:
        return incomplete
    access_key, date, region, service, terminator = scope
    assert creds.access_key_id is not None and creds.secret_access_key is not None
    if not hmac.compare_digest(access_key.encode(), creds.access_key_id.encode()):
        return AuthFailure("UnrecognizedClientException", _BAD_TOKEN)
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return incomplete
    if abs(now - signed_at) > MAX_SKEW_S:
        return AuthFailure(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is more than 5 minutes away from the gateway's clock",
        )
    if (date, region, service, terminator) != (amz_date[:8], creds.region, SERVICE, "aws4_request"):
        return AuthFailure(
            "InvalidSignatureException",
            f"Credential should be scoped to {amz_date[:8]}/{creds.region}/{SERVICE}/aws4_request",
        )
    content_sha = _header(headers, "x-amz-content-sha256")
    if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
        return AuthFailure("InvalidSignatureException", "X-Amz-Content-SHA256 is not the body's digest")
    signed_headers = [(name, value) for name, value in headers if name.lower() in signed]
    expected = _signature(creds, method, url, signed_headers, body, amz_date)
    if not hmac.compare_digest(expected.encode(), parts["Signature"].encode()):
        return AuthFailure(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None


def _signature(
    creds: AdminCredentials,
    method: str,
    url: str,
    signed_headers: Sequence[tuple[str, str]],
    body: bytes,
    amz_date: str,
) -> str:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request: Any = AWSRequest(method=method.upper(), url=url, data=body)
    for name, value in signed_headers:
        request.headers[name] = value  # HTTPHeaders: repeated names are kept, in order
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key), SERVICE, creds.region)
    canonical = signer.canonical_request(request)
    signature: str = signer.signature(signer.string_to_sign(request, canonical), request)
    return signature

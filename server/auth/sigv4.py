"""AWS Signature Version 4 verification for ``execute-api`` (aws-contract.md §5.5); pure (no I/O imports).

The verifier recomputes the signature the client should have sent over the request as received
and compares it in constant time. Both forms SDKs produce are accepted:

* **header**: ``Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260301/us-east-1/execute-api/
  aws4_request, SignedHeaders=host;x-amz-date, Signature=...`` plus ``X-Amz-Date`` (or ``Date``)
  and optionally ``X-Amz-Security-Token`` and ``X-Amz-Content-Sha256``;
* **presigned query**: ``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``,
  ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature`` (and
  ``X-Amz-Security-Token``) in the query string; what WebSocket clients use for ``$connect``.

What is checked, in the order AWS checks (its messages, as recorded against AWS by DynamoDB
emulators and SDK issue reports): the parts are present and well formed (403
``IncompleteSignatureException``; a header and a presigned query together is
``InvalidSignatureException``); the date's format, and the time: within 5 minutes of ``now``
(presigned: not before ``date - 5 min`` nor after ``date + X-Amz-Expires``); ``host`` is signed; the
algorithm; the credential's five parts; its scope (this gateway's region, the service
``execute-api``, the terminator, the date of ``X-Amz-Date``: every mismatch in one message); the
access key is known (403 ``UnrecognizedClientException``); the payload hash (the body's SHA-256,
or the signed ``X-Amz-Content-Sha256`` value, ``UNSIGNED-PAYLOAD`` included) and the signature (403
``InvalidSignatureException``); the session token is the key's (``UnrecognizedClientException``).

Canonicalization follows the SigV4 rules for non-S3 services (as botocore and the JS SDK v3 sign):
the canonical URI is the path as sent with dot segments and empty segments removed, then
percent-encoded again (so ``%3D`` becomes ``%253D``: "double encoding"); the canonical query is
every parameter (minus ``X-Amz-Signature``) decoded, re-encoded with only ``A-Za-z0-9-_.~``
left bare and sorted; a signed header's values are trimmed, inner runs of spaces collapsed and
repeats joined with ``,``.

A replay of a captured request within its validity window is not detected (AWS does not either):
TLS is what keeps requests from being captured (docs/security.md).
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote

from server.errors import IncompleteSigV4, InvalidSignature, MissingSignature, UnrecognizedClient
from server.messages import HttpRequest

__all__ = [
    "ALGORITHM",
    "MAX_EXPIRES_S",
    "MAX_SKEW_S",
    "SERVICE",
    "UNSIGNED_PAYLOAD",
    "SecretLookup",
    "SigningSecret",
    "Verified",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
MAX_SKEW_S = 300  # AWS: 5 minutes either way
MAX_EXPIRES_S = 604_800  # presigned: at most a week
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_BASIC_FORMAT = "%Y%m%dT%H%M%SZ"
_QUERY_PARTS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")


@dataclass(frozen=True, slots=True)
class SigningSecret:
    """What the gateway knows about one access key id."""

    secret_access_key: str
    session_token: str | None = None  # required, and compared, when set


SecretLookup = Callable[[str], SigningSecret | None]


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose signature is valid: who signed it."""

    access_key_id: str
    presigned: bool
    signed_at: str  # X-Amz-Date


@dataclass(slots=True)
class _Signed:
    """The signature's parts, from the Authorization header or the query string."""

    algorithm: str
    credential: str
    signed_headers: str
    signature: str
    amz_date: str
    session_token: str | None
    content_sha256: str | None
    expires: int | None  # presigned only
    presigned: bool


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """(key, value) as sent (still encoded), in order; ``a`` is ``("a", "")``."""
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((key, value))
    return pairs


Headers = dict[str, list[str]]  # lower-case name -> values in arrival order


def _index(headers: Sequence[tuple[str, str]]) -> Headers:
    index: Headers = {}
    for name, value in headers:
        found = index.get(lname := name.lower())
        if found is None:
            index[lname] = [value]
        else:
            found.append(value)
    return index


def _last(index: Headers, name: str) -> str | None:
    found = index.get(name)
    return found[-1] if found else None


def verify(request: HttpRequest, *, secrets: SecretLookup, region: str, now: float) -> Verified:
    """The signer of ``request``, or raise :class:`MissingSignature` (no signature at all),
    :class:`IncompleteSigV4`, :class:`UnrecognizedClient` or :class:`InvalidSignature`.

    Checked in the order AWS checks (its recorded messages): the parts are there; the date's
    format and the time window; ``host`` is signed; the algorithm; the credential's five parts;
    its scope (every mismatch in one message); the access key; the signature; the session token.
    """
    pairs = _query_pairs(request.query_string)
    headers = _index(request.headers)
    signed = _parse(headers, pairs)
    signed_at = _parse_date(signed.amz_date)
    _check_time(signed, signed_at, now)
    header_names = signed.signed_headers.split(";")
    if "host" not in header_names:
        raise InvalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if signed.algorithm != ALGORITHM:
        raise IncompleteSigV4(
            f"Unsupported AWS 'algorithm': '{signed.algorithm}' (only {ALGORITHM} for now). "
        )
    scope = signed.credential.rstrip("/").split("/")
    if len(scope) != 5:
        raise IncompleteSigV4(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{signed.credential}'"
        )
    access_key, scope_date, scope_region, scope_service, terminator = scope
    _check_scope(scope_date, scope_region, scope_service, terminator, signed.amz_date, region)
    secret = secrets(access_key)
    if secret is None:
        raise UnrecognizedClient()
    payload = _payload_hash(request.body, signed.content_sha256)
    canonical = _canonical_request(request, headers, pairs, header_names, signed, payload)
    scope_text = f"{scope_date}/{scope_region}/{SERVICE}/aws4_request"
    string_to_sign = (
        f"{ALGORITHM}\n{signed.amz_date}\n{scope_text}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    key = _signing_key(secret.secret_access_key, scope_date, scope_region)
    expected = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
    if not _same(expected, signed.signature):
        raise InvalidSignature(
            f"{InvalidSignature.default_message}\n\nThe Canonical String for this request should have "
            f"been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
        )
    if not _same(signed.session_token or "", secret.session_token or ""):
        # A token where the key has none, none where it has one, or another one: AWS's wording
        # does not tell these apart.
        raise UnrecognizedClient()
    return Verified(access_key, signed.presigned, signed.amz_date)


def _check_scope(
    date: str, scope_region: str, service: str, terminator: str, amz_date: str, region: str
) -> None:
    problems = []
    if scope_region != region:
        problems.append(f"Credential should be scoped to a valid region, not '{scope_region}'. ")
    if service != SERVICE:
        problems.append(f"Credential should be scoped to correct service: '{SERVICE}'. ")
    if terminator != "aws4_request":
        problems.append(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        )
    if date != amz_date[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if problems:
        raise InvalidSignature("".join(problems))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def _parse(headers: Headers, pairs: Sequence[tuple[str, str]]) -> _Signed:
    auth = _last(headers, "authorization")
    query = {_unquote(key): _unquote(value) for key, value in pairs} if pairs else {}
    if auth is not None and "X-Amz-Algorithm" in query:
        raise InvalidSignature(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
        )
    if auth is not None and auth.startswith("AWS4-"):
        return _parse_header(headers, auth)
    if any(part in query for part in _QUERY_PARTS):
        return _parse_query(headers, query)
    if auth:
        # Anything else in Authorization (a bearer token, Basic): AWS tries to read it as SigV4
        # ``key=value`` pairs and fails (aws-contract.md §0.4).
        raise IncompleteSigV4(_no_equal_sign(auth))
    raise MissingSignature()


def _no_equal_sign(auth: str) -> str:
    digest = base64.b64encode(hashlib.sha256(auth.encode()).digest()).decode()
    return (
        "Invalid key=value pair (missing equal-sign) in Authorization header "
        f"(hashed with SHA-256 and encoded with Base64): '{digest}'."
    )


def _parse_header(headers: Headers, auth: str) -> _Signed:
    algorithm, _, rest = auth.partition(" ")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        if not item.strip():
            continue
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise IncompleteSigV4(_no_equal_sign(auth))
        fields[name] = value
    amz_date = _last(headers, "x-amz-date") or _from_http_date(_last(headers, "date"))
    missing = [
        f"Authorization header requires '{name}' parameter. "
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    if not amz_date:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        )
    if missing or not amz_date:
        raise IncompleteSigV4("".join(missing) + f"Authorization={auth}")
    return _Signed(
        algorithm=algorithm,
        credential=fields["Credential"],
        signed_headers=fields["SignedHeaders"],
        signature=fields["Signature"],
        amz_date=amz_date,
        session_token=_last(headers, "x-amz-security-token"),
        content_sha256=_last(headers, "x-amz-content-sha256"),
        expires=None,
        presigned=False,
    )


def _parse_query(headers: Headers, query: dict[str, str]) -> _Signed:
    missing = [
        f"AWS query-string parameters must include '{name}'. " for name in _QUERY_PARTS if not query.get(name)
    ]
    if missing:
        raise IncompleteSigV4("".join(missing) + "Re-examine the query-string parameters.")
    expires: int | None = None
    if "X-Amz-Expires" in query:
        raw = query["X-Amz-Expires"]
        if not raw.isdigit():
            raise IncompleteSigV4(f"X-Amz-Expires should be a number, not '{raw}'.")
        expires = int(raw)
        if expires > MAX_EXPIRES_S:
            raise IncompleteSigV4(
                f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES_S}"
            )
    return _Signed(
        algorithm=query["X-Amz-Algorithm"],
        credential=query["X-Amz-Credential"],
        signed_headers=query["X-Amz-SignedHeaders"],
        signature=query["X-Amz-Signature"],
        amz_date=query["X-Amz-Date"],
        session_token=query.get("X-Amz-Security-Token") or _last(headers, "x-amz-security-token"),
        content_sha256=query.get("X-Amz-Content-Sha256") or _last(headers, "x-amz-content-sha256"),
        expires=expires,
        presigned=True,
    )


def _from_http_date(value: str | None) -> str | None:
    """A ``Date`` header (RFC 7231) in ISO 8601 basic format, or None."""
    if not value:
        return None
    try:
        parsed = time.strptime(value.strip(), "%a, %d %b %Y %H:%M:%S GMT")
    except ValueError:
        return value  # reported by _parse_date with AWS's message
    return time.strftime(_BASIC_FORMAT, parsed)


def _parse_date(amz_date: str) -> float:
    """ISO 8601 basic format (``20260301T120000Z``) -> epoch seconds (by hand: strptime costs
    more than the rest of a verification)."""
    try:
        if len(amz_date) != 16 or amz_date[8] != "T" or amz_date[15] != "Z":
            raise ValueError(amz_date)
        if not (amz_date.isascii() and amz_date[:8].isdigit() and amz_date[9:15].isdigit()):
            raise ValueError(amz_date)
        year, month, day = int(amz_date[0:4]), int(amz_date[4:6]), int(amz_date[6:8])
        hour, minute, second = int(amz_date[9:11]), int(amz_date[11:13]), int(amz_date[13:15])
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
            raise ValueError(amz_date)
        return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    except ValueError:
        raise IncompleteSigV4(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def _basic(at: float) -> str:
    return time.strftime(_BASIC_FORMAT, time.gmtime(at))


def _check_time(signed: _Signed, signed_at: float, now: float) -> None:
    if signed_at - now > MAX_SKEW_S:
        raise InvalidSignature(
            f"Signature not yet current: {signed.amz_date} is still later than {_basic(now + MAX_SKEW_S)} "
            f"({_basic(now)} + 5 min.)"
        )
    if signed.expires is not None:  # presigned: valid from its date for X-Amz-Expires seconds
        if now - signed_at > signed.expires:
            raise InvalidSignature(
                f"Signature expired: {signed.amz_date} is now earlier than {_basic(now - signed.expires)} "
                f"({_basic(now)} - {signed.expires} sec.)"
            )
    elif now - signed_at > MAX_SKEW_S:
        raise InvalidSignature(
            f"Signature expired: {signed.amz_date} is now earlier than {_basic(now - MAX_SKEW_S)} "
            f"({_basic(now)} - 5 min.)"
        )


def _payload_hash(body: bytes, declared: str | None) -> str:
    """The canonical request's last line: the declared ``X-Amz-Content-Sha256`` (which must be the
    body's digest unless it is ``UNSIGNED-PAYLOAD``), else the body's SHA-256."""
    actual = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
    if declared is None:
        return actual
    if declared != UNSIGNED_PAYLOAD and declared.lower() != actual:
        raise InvalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
    return declared


_BARE_PATH = re.compile(r"[A-Za-z0-9\-_.~/]*")
_BARE = re.compile(r"[A-Za-z0-9\-_.~]*")


def _unquote(text: str) -> str:
    return unquote(text) if "%" in text else text


def _quote(text: str) -> str:
    """URI-encode everything but ``A-Za-z0-9-_.~`` (most keys and values need nothing)."""
    return text if _BARE.fullmatch(text) else quote(text, safe="-_.~")


def _canonical_uri(raw_path: str) -> str:
    """RFC 3986 dot-segment removal plus empty segments dropped (as the SDKs do), then the
    already-encoded path encoded once more (SigV4 for every service but S3)."""
    if not raw_path:
        return "/"
    out: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    path = "/" + "/".join(out)
    if raw_path.endswith("/") and out:
        path += "/"
    return path if _BARE_PATH.fullmatch(path) else quote(path, safe="/~")


def _canonical_query(pairs: Sequence[tuple[str, str]], presigned: bool) -> str:
    encoded = sorted(
        (_quote(_unquote(key)), _quote(_unquote(value)))
        for key, value in pairs
        if not (presigned and _unquote(key) == "X-Amz-Signature")
    )
    return "&".join(f"{key}={value}" for key, value in encoded)


def _canonical_headers(headers: Headers, names: Sequence[str]) -> str:
    return "".join(
        f"{name}:{','.join(' '.join(value.split()) for value in headers.get(name, ()))}\n" for name in names
    )


def _canonical_request(
    request: HttpRequest,
    headers: Headers,
    pairs: Sequence[tuple[str, str]],
    header_names: Sequence[str],
    signed: _Signed,
    payload: str,
) -> str:
    return "\n".join(
        (
            request.method,
            _canonical_uri(request.raw_path),
            _canonical_query(pairs, signed.presigned),
            _canonical_headers(headers, header_names),
            signed.signed_headers,
            payload,
        )
    )


@lru_cache(maxsize=1024)
def _signing_key(secret: str, date: str, region: str) -> bytes:
    """``kSigning``: four HMACs, the same for a key all day, so cached."""
    key = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
    for part in (region, SERVICE, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key

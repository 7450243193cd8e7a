"""Requests signed by botocore's own SigV4 signers (header and presigned forms), for the tests.

``sign`` returns what a client would send: the URL (with the presigned query, if any) and the
header pairs. ``clock_offset_s`` signs with a clock that is off by that much (botocore reads the
time through ``botocore.auth.get_current_datetime``).
"""

from __future__ import annotations

import datetime
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from server.messages import HttpRequest

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"


def sign(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    token: str | None = None,
    region: str = REGION,
    service: str = "execute-api",
    presign: bool = False,
    expires: int = 300,
    clock_offset_s: float = 0.0,
) -> tuple[str, list[tuple[str, str]]]:
    request: Any = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    request.headers["Host"] = urlsplit(url).netloc
    credentials = Credentials(key_id, secret, token)
    signer = (
        SigV4QueryAuth(credentials, service, region, expires=expires)
        if presign
        else SigV4Auth(credentials, service, region)
    )
    at = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(seconds=clock_offset_s)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        signer.add_auth(request)
    return request.url, [(name, str(value)) for name, value in request.headers.items()]


def http_request(method: str, url: str, headers: list[tuple[str, str]], body: bytes = b"") -> HttpRequest:
    """The :class:`HttpRequest` the gateway would build from this signed request."""
    parts = urlsplit(url)
    return HttpRequest(
        method=method,
        raw_path=parts.path or "/",
        query_string=parts.query,
        headers=tuple(headers),
        body=body,
        source_ip="127.0.0.1",
        host=parts.netloc,
    )

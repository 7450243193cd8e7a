"""Turning a Lambda proxy result into an HTTP response, validated exactly as API Gateway does.

REST / payload 1.0 (aws-contract.md §2.4, recorded against AWS):

* the result must be a JSON object whose keys are among ``statusCode``, ``headers``,
  ``multiValueHeaders``, ``body``, ``isBase64Encoded``; anything else (extra key, ``null``, a bare
  string) is a malformed response: 502 ``{"message": "Internal server error"}``;
* ``statusCode`` may be an int or a numeric string; missing means 200;
* header values may be strings or booleans (``true`` -> ``"true"``); ``headers``/``multiValueHeaders``
  may be ``null``; a non-list multi-value is malformed; ``body`` must be a string or ``null``;
* a name in both maps becomes one header, multi values first; the casing of ``multiValueHeaders``
  wins; each value goes out on its own header line, so ``Set-Cookie`` values stay separate cookies
  (a client folding repeats reads ``value1, value2``, as recorded; aws-contract.md §2.4);
* ``isBase64Encoded: true`` is decoded only when the first ``Accept`` media type matches
  ``binaryMediaTypes``; otherwise the base64 text itself is returned;
* ``Content-Type: application/json`` is added when the function sets none.

Payload 2.0 (aws-contract.md §2.5): a result without ``statusCode`` is *inferred*: 200, JSON text of the
whole value (a string is used as-is), ``content-type: application/json``. ``cookies`` become
``set-cookie`` headers. Invalid results are 500 ``{"message":"Internal Server Error"}``.

Pure core: imports no I/O library.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from server.errors import IntegrationFailure
from server.events import media_type_matches
from server.messages import HttpResponse

__all__ = ["MalformedProxyResponse", "v1_response", "v2_response"]

_V1_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


class MalformedProxyResponse(IntegrationFailure):
    """Execution failed due to configuration error: Malformed Lambda proxy response."""


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise MalformedProxyResponse()
    if isinstance(value, int):
        status = value
    elif isinstance(value, str) and value.strip().isdigit():
        status = int(value.strip())
    else:
        raise MalformedProxyResponse()
    if not 100 <= status <= 599:
        raise MalformedProxyResponse()
    return status


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise MalformedProxyResponse()


def _first_accept(accept: str | None) -> str | None:
    if not accept:
        return None
    return accept.split(",", 1)[0].strip() or None


def v1_response(
    result: Any, *, accept: str | None = None, binary_media_types: Sequence[str] = ()
) -> HttpResponse:
    """Validate a REST / payload 1.0 proxy result and build the client response."""
    if not isinstance(result, dict) or not result or not set(result) <= _V1_KEYS:
        raise MalformedProxyResponse()
    status = _status(result["statusCode"]) if "statusCode" in result else 200

    merged: dict[str, tuple[str, list[str]]] = {}  # lower name -> (display name, values)
    multi = result.get("multiValueHeaders")
    if multi is not None:
        if not isinstance(multi, dict):
            raise MalformedProxyResponse()
        for name, values in multi.items():
            if not isinstance(values, list):
                raise MalformedProxyResponse()
            entry = merged.setdefault(str(name).lower(), (str(name), []))
            entry[1].extend(_header_value(v) for v in values)
    single = result.get("headers")
    if single is not None:
        if not isinstance(single, dict):
            raise MalformedProxyResponse()
        for name, value in single.items():
            entry = merged.setdefault(str(name).lower(), (str(name), []))
            entry[1].append(_header_value(value))

    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedProxyResponse()
    is_b64 = result.get("isBase64Encoded")
    if is_b64 is not None and not isinstance(is_b64, bool):
        raise MalformedProxyResponse()
    payload = (body or "").encode("utf-8")
    if is_b64 and body and media_type_matches(_first_accept(accept), binary_media_types):
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedProxyResponse() from exc

    headers = [(display, value) for display, values in merged.values() for value in values]
    response = HttpResponse(status, headers, payload)
    response.set_default_header("Content-Type", "application/json")
    return response


def v2_response(result: Any) -> HttpResponse:
    """Validate or infer an HTTP API payload 2.0 result."""
    if not (isinstance(result, dict) and "statusCode" in result):
        if isinstance(result, str):
            text = result
        else:
            try:
                text = json.dumps(result, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                raise MalformedProxyResponse() from exc
        return HttpResponse(200, [("content-type", "application/json")], text.encode("utf-8"))

    status = _status(result["statusCode"])
    headers: list[tuple[str, str]] = []
    raw_headers = result.get("headers")
    if raw_headers is not None:
        if not isinstance(raw_headers, dict):
            raise MalformedProxyResponse()
        for name, value in raw_headers.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            headers.append((str(name), _header_value(value)))
    cookies = result.get("cookies")
    if cookies is not None:
        if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
            raise MalformedProxyResponse()
        headers.extend(("set-cookie", c) for c in cookies)
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        if isinstance(body, dict | list):
            body = json.dumps(body, separators=(",", ":"))
        else:
            raise MalformedProxyResponse()
    payload = (body or "").encode("utf-8")
    if result.get("isBase64Encoded") is True and body:
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedProxyResponse() from exc
    response = HttpResponse(status, headers, payload)
    if body is not None or payload:
        response.set_default_header("content-type", "application/json")
    return response

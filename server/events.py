"""Lambda proxy events, built exactly as API Gateway builds them.

* :func:`rest_v1_event`: REST API (and HTTP API payload 1.0) event, aws-contract.md §2.3.
* :func:`http_v2_event`: HTTP API payload 2.0 event, aws-contract.md §2.5.

Rules worth knowing (each has a test in tests/server/test_events.py):

* ``headers`` / ``queryStringParameters`` hold the **last** value of a repeated name; the full lists
  are in the ``multiValue*`` maps. Header-name casing is kept as sent, except what
  server/event_headers.py rewrites (``Authorization``, ``X-Forwarded-*``, the trace header).
* Query values are URL-decoded (``+`` becomes a space, ``%2B`` becomes ``+``); ``?a`` gives
  ``{"a": ""}``; no query string gives ``null`` for both maps.
* Path parameters keep their percent-encoding (REST); ``body`` is ``null`` when empty; REST events
  have no ``version`` key; unset identity fields are present with ``null``.
* Payload 2.0 comma-joins duplicates, lower-cases header names, moves ``Cookie`` into ``cookies``
  and omits empty ``cookies``/``queryStringParameters``/``pathParameters``/``body``/
  ``stageVariables``.

Pure core: imports no I/O library; time comes in as ``now_ms``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

from server.event_headers import lambda_event_headers
from server.ids import clf_time
from server.messages import HttpRequest

__all__ = [
    "RequestInfo",
    "last_and_all",
    "body_is_binary",
    "http_v2_event",
    "media_type_matches",
    "parse_query",
    "rest_v1_event",
]

JsonDict = dict[str, Any]

_IDENTITY_KEYS = (
    "cognitoIdentityPoolId",
    "accountId",
    "cognitoIdentityId",
    "caller",
    "sourceIp",
    "principalOrgId",
    "accessKey",
    "cognitoAuthenticationType",
    "cognitoAuthenticationProvider",
    "userArn",
    "userAgent",
    "user",
)


@dataclass(slots=True)  # hot path: plain (non-frozen) init is cheaper
class RequestInfo:
    """What the pipeline knows about a request once it is routed (inputs to event building)."""

    request: HttpRequest
    api_id: str
    account_id: str
    stage: str
    stage_prefix: str  # "/dev" (plus base path) or "" for an HTTP API $default stage
    path: str  # API-relative path as sent ("/pets/1"), base path included (see dispatch)
    resource: str  # resource template "/pets/{id}" or "$default"
    route_key: str
    path_parameters: Mapping[str, str]
    stage_variables: Mapping[str, str]
    request_id: str
    extended_request_id: str
    now_ms: int
    binary_media_types: Sequence[str] = ()
    resource_id: str = ""
    deployment_id: str = ""
    authorizer: Mapping[str, Any] | None = None
    identity_extra: Mapping[str, Any] | None = None
    trace_id: str = ""  # X-Amzn-Trace-Id (server/trace.py); "" when the caller built no trace
    context_path: str = ""  # requestContext.path when it differs from stage prefix + path (slashes)


def parse_query(query_string: str) -> list[tuple[str, str]]:
    """Split and decode a raw query string the way API Gateway does (``+`` is a space)."""
    pairs: list[tuple[str, str]] = []
    if not query_string:
        return pairs
    for part in query_string.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value) if sep else ""))
    return pairs


def media_type_matches(content_type: str | None, patterns: Sequence[str]) -> bool:
    """True if the media type is one of ``binaryMediaTypes``, as AWS matches (recorded, LocalStack's
    AWS-validated ``test_aws_proxy_binary_response``; aws-contract.md §7.6): equal to a listed type,
    or under a listed ``type/*``, or anything when ``*/*`` is listed. A wildcard on the left
    (``*/test``) matches nothing, and a wildcard in the request (``image/*``, ``*/*``) only an equal
    listed type."""
    if not content_type or not patterns:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    main = media.partition("/")[0]
    for pattern in patterns:
        p = pattern.strip().lower()
        if p == "*/*":
            return True
        if p.startswith("*/"):  # recorded: never matches, not even an equal Accept
            continue
        if p == media or (p.endswith("/*") and p[:-2] == main):
            return True
    return False


def body_is_binary(request: HttpRequest, binary_media_types: Sequence[str]) -> bool:
    return media_type_matches(request.header("content-type"), binary_media_types)


def _encode_body(body: bytes, binary: bool) -> tuple[str | None, bool]:
    if not body:
        return None, False
    if binary:
        return base64.b64encode(body).decode("ascii"), True
    return body.decode("utf-8", errors="replace"), False


def _domain_prefix(host: str) -> str:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    return name.split(".", 1)[0]


def last_and_all(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The single-value map (last value wins) and the multi-value map of name/value pairs, as the
    v1 and WebSocket events carry headers and query parameters."""
    last: dict[str, str] = {}
    every: dict[str, list[str]] = {}
    for name, value in pairs:
        last[name] = value
        every.setdefault(name, []).append(value)
    return last, every


def _event_header_pairs(info: RequestInfo, *, payload_v2: bool = False) -> Sequence[tuple[str, str]]:
    if not info.trace_id:  # built by hand (unit tests): the client's headers as they are
        return info.request.headers
    return lambda_event_headers(info.request, info.trace_id, payload_v2=payload_v2)


def rest_v1_event(info: RequestInfo, *, http_api_v1: bool = False) -> JsonDict:
    """The REST v1 proxy event (``http_api_v1`` adds ``version: "1.0"`` for HTTP API 1.0)."""
    req = info.request
    # HTTP APIs keep Content-Length in payload 1.0 events too (DG:http-api-develop-integrations-lambda).
    headers, multi_headers = last_and_all(_event_header_pairs(info, payload_v2=http_api_v1))
    query_pairs = parse_query(req.query_string)
    qsp: dict[str, str] | None = None
    mqsp: dict[str, list[str]] | None = None
    if query_pairs:
        qsp, mqsp = last_and_all(query_pairs)

    identity: dict[str, Any] = dict.fromkeys(_IDENTITY_KEYS)
    identity["sourceIp"] = req.source_ip
    identity["userAgent"] = req.header("user-agent")
    if info.identity_extra:
        identity.update(info.identity_extra)

    body, is_b64 = _encode_body(req.body, body_is_binary(req, info.binary_media_types))
    context: JsonDict = {
        "resourceId": info.resource_id,
        "resourcePath": info.resource,
        "httpMethod": req.method,
        "extendedRequestId": info.extended_request_id,
        "requestTime": clf_time(info.now_ms),
        "path": info.context_path or (info.stage_prefix + info.path if info.stage_prefix else info.path),
        "accountId": info.account_id,
        "protocol": req.protocol,
        "stage": info.stage,
        "domainPrefix": _domain_prefix(req.host),
        "requestTimeEpoch": info.now_ms,
        "requestId": info.request_id,
        "identity": identity,
        "domainName": req.host,
        "deploymentId": info.deployment_id,
        "apiId": info.api_id,
    }
    if info.authorizer is not None:
        context["authorizer"] = dict(info.authorizer)
    event: JsonDict = {}
    if http_api_v1:
        event["version"] = "1.0"
    event.update(
        {
            "resource": info.resource,
            "path": info.path,
            "httpMethod": req.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": qsp,
            "multiValueQueryStringParameters": mqsp,
            "pathParameters": dict(info.path_parameters) or None,
            "stageVariables": dict(info.stage_variables) or None,
            "requestContext": context,
            "body": body,
            "isBase64Encoded": is_b64,
        }
    )
    return event


_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def _v2_is_binary(content_type: str | None, binary_media_types: Sequence[str]) -> bool:
    # HTTP APIs base64-encode every body whose content type is not text-like (aws-contract.md §2.5).
    if binary_media_types and media_type_matches(content_type, binary_media_types):
        return True
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return not (
        media.startswith(_TEXT_TYPES)
        or media.endswith(("+json", "+xml"))
        or media == "application/x-www-form-urlencoded"
    )


def http_v2_event(info: RequestInfo) -> JsonDict:
    """The HTTP API payload 2.0 event."""
    req = info.request
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in _event_header_pairs(info, payload_v2=True):
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[lname] = f"{headers[lname]},{value}" if lname in headers else value
    qsp: dict[str, str] = {}
    for name, value in parse_query(req.query_string):
        qsp[name] = f"{qsp[name]},{value}" if name in qsp else value

    raw_path = info.stage_prefix + info.path if info.stage_prefix else info.path
    body, is_b64 = _encode_body(req.body, _v2_is_binary(req.header("content-type"), info.binary_media_types))
    context: JsonDict = {
        "accountId": info.account_id,
        "apiId": info.api_id,
        "domainName": req.host,
        "domainPrefix": _domain_prefix(req.host),
        "http": {
            "method": req.method,
            "path": unquote(raw_path),
            "protocol": req.protocol,
            "sourceIp": req.source_ip,
            "userAgent": req.header("user-agent") or "",
        },
        "requestId": info.extended_request_id,
        "routeKey": info.route_key,
        "stage": info.stage,
        "time": clf_time(info.now_ms),
        "timeEpoch": info.now_ms,
    }
    if info.authorizer is not None:
        context["authorizer"] = dict(info.authorizer)
    event: JsonDict = {
        "version": "2.0",
        "routeKey": info.route_key,
        "rawPath": raw_path,
        "rawQueryString": req.query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if qsp:
        event["queryStringParameters"] = qsp
    event["requestContext"] = context
    if info.path_parameters:
        event["pathParameters"] = {k: unquote(v) for k, v in info.path_parameters.items()}
    if info.stage_variables:
        event["stageVariables"] = dict(info.stage_variables)
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = is_b64
    return event

"""REST v1 and HTTP API 2.0 event shapes for the edge cases of aws-contract.md §2.3 and §2.5."""

from __future__ import annotations

import base64
from typing import Any

from server.events import RequestInfo, http_v2_event, parse_query, rest_v1_event
from server.messages import HttpRequest

NOW_MS = 1_583_349_317_000  # 04/Mar/2020:19:15:17 +0000


def info(
    *,
    method: str = "GET",
    path: str = "/proxy-value",
    query: str = "",
    headers: tuple[tuple[str, str], ...] = (("Host", "127.0.0.1:3000"), ("User-Agent", "ua/1")),
    body: bytes = b"",
    stage_prefix: str = "/dev",
    params: dict[str, str] | None = None,
    variables: dict[str, str] | None = None,
    binary: tuple[str, ...] = (),
    route_key: str = "ANY /{proxy+}",
) -> RequestInfo:
    request = HttpRequest(
        method=method,
        raw_path=stage_prefix + path,
        query_string=query,
        headers=headers,
        body=body,
        source_ip="127.0.0.1",
        host="127.0.0.1:3000",
    )
    return RequestInfo(
        request=request,
        api_id="abc123",
        account_id="123456789012",
        stage=stage_prefix.strip("/") or "$default",
        stage_prefix=stage_prefix,
        path=path,
        resource="/{proxy+}",
        route_key=route_key,
        path_parameters=params or {},
        stage_variables=variables or {},
        request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        extended_request_id="BFHPhFe3IAMF95g=",
        now_ms=NOW_MS,
        binary_media_types=binary,
    )


def test_v1_top_level_keys_and_nulls() -> None:
    event = rest_v1_event(info())
    assert list(event) == [
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    ]
    assert "version" not in event  # REST events have no version key
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_v1_request_context() -> None:
    ctx = rest_v1_event(info())["requestContext"]
    assert ctx["path"] == "/dev/proxy-value"
    assert ctx["stage"] == "dev"
    assert ctx["requestTime"] == "04/Mar/2020:19:15:17 +0000"
    assert ctx["requestTimeEpoch"] == NOW_MS
    assert ctx["protocol"] == "HTTP/1.1"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "ua/1"
    # Unset identity fields are present with null.
    for key in ("accountId", "caller", "user", "userArn", "cognitoIdentityId", "accessKey"):
        assert key in ctx["identity"] and ctx["identity"][key] is None
    assert "authorizer" not in ctx  # no key without an authorizer
    assert ctx["domainName"] == "127.0.0.1:3000"
    assert ctx["apiId"] == "abc123"


def test_v1_repeated_query_keys_last_wins_and_plus_decoding() -> None:
    event = rest_v1_event(info(query="category=electronics&category=books&q=a+b&r=a%2Bb&flag&e="))
    assert event["queryStringParameters"] == {
        "category": "books",
        "q": "a b",
        "r": "a+b",
        "flag": "",
        "e": "",
    }
    assert event["multiValueQueryStringParameters"]["category"] == ["electronics", "books"]


def test_v1_repeated_headers_and_casing() -> None:
    headers = (("Host", "h"), ("X-Thing", "1"), ("x-thing", "2"), ("Accept", "text/html"))
    event = rest_v1_event(info(headers=headers))
    assert event["headers"]["X-Thing"] == "1"
    assert event["headers"]["x-thing"] == "2"
    assert event["multiValueHeaders"]["Accept"] == ["text/html"]


def test_v1_path_keeps_trailing_and_double_slashes_and_encoding() -> None:
    event = rest_v1_event(
        info(path="/proxy-value//double-slash/", params={"proxy": "proxy-value//double-slash"})
    )
    assert event["path"] == "/proxy-value//double-slash/"
    assert event["pathParameters"] == {"proxy": "proxy-value//double-slash"}
    encoded = rest_v1_event(info(path="/a%2Bb", params={"proxy": "a%2Bb"}))
    assert encoded["pathParameters"] == {"proxy": "a%2Bb"}


def test_v1_binary_body_is_base64_only_under_binary_media_types() -> None:
    headers = (("Content-Type", "image/png"),)
    text = rest_v1_event(info(headers=headers, body=b"abc"))
    assert text["body"] == "abc" and text["isBase64Encoded"] is False
    binary = rest_v1_event(info(headers=headers, body=b"\x89PNG", binary=("image/*",)))
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x89PNG"


def test_http_api_v1_has_version() -> None:
    assert rest_v1_event(info(), http_api_v1=True)["version"] == "1.0"


def v2(**kwargs: Any) -> dict[str, Any]:
    return http_v2_event(info(**kwargs))


def test_v2_shape_and_omitted_keys() -> None:
    event = v2(stage_prefix="", route_key="$default")
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/proxy-value"
    assert event["rawQueryString"] == ""
    for absent in ("cookies", "queryStringParameters", "pathParameters", "body", "stageVariables"):
        assert absent not in event
    ctx = event["requestContext"]
    assert ctx["stage"] == "$default"
    assert ctx["http"] == {
        "method": "GET",
        "path": "/proxy-value",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "ua/1",
    }
    assert ctx["time"] == "04/Mar/2020:19:15:17 +0000" and ctx["timeEpoch"] == NOW_MS


def test_v2_named_stage_stays_in_raw_path() -> None:
    event = v2(stage_prefix="/dev", path="/agents/1234")
    assert event["rawPath"] == "/dev/agents/1234"
    assert event["requestContext"]["http"]["path"] == "/dev/agents/1234"


def test_v2_comma_joins_and_lowercases_and_cookies() -> None:
    headers = (("X-A", "1"), ("x-a", "2"), ("Cookie", "a=1; b=2"), ("Host", "h"))
    event = v2(headers=headers, query="k=1&k=2&s=a+b")
    assert event["headers"]["x-a"] == "1,2"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["queryStringParameters"] == {"k": "1,2", "s": "a b"}
    assert event["rawQueryString"] == "k=1&k=2&s=a+b"


def test_v2_binary_body() -> None:
    event = v2(headers=(("content-type", "application/octet-stream"),), body=b"\x00\x01")
    assert event["isBase64Encoded"] is True
    json_event = v2(headers=(("content-type", "application/json"),), body=b'{"a":1}')
    assert json_event["body"] == '{"a":1}' and json_event["isBase64Encoded"] is False


def test_parse_query_edge_cases() -> None:
    assert parse_query("") == []
    assert parse_query("a=1&&b") == [("a", "1"), ("b", "")]
    assert parse_query("a%3Db=c%26d") == [("a=b", "c&d")]

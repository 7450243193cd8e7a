"""Lambda proxy response validation, row by row from aws-contract.md §2.4 (recorded against AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import IntegrationFailure
from server.proxy_response import v1_response, v2_response


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 200, "wrongValue": "x"},  # extra top-level key
        None,
        {},
        "justAString",
        {"statusCode": "test"},
        {"statusCode": 200, "multiValueHeaders": {"a": "not-a-list"}},
        {"statusCode": 200, "headers": {"a": 1}},  # non-string header value
        {"statusCode": 200, "body": {"a": 1}},  # non-string body
        {"statusCode": 200, "headers": "x"},
        {"statusCode": True},
        {"statusCode": 200, "isBase64Encoded": "yes"},
        [{"statusCode": 200}],
    ],
)
def test_v1_malformed_is_502(result: Any) -> None:
    with pytest.raises(IntegrationFailure) as info:
        v1_response(result)
    assert info.value.status == 502


def test_v1_minimal() -> None:
    response = v1_response({"statusCode": 200})
    assert response.status == 200 and response.body == b""
    assert response.header("content-type") == "application/json"


def test_v1_numeric_string_status_and_missing_status() -> None:
    assert v1_response({"statusCode": "201"}).status == 201
    assert v1_response({"headers": {"a": "b"}}).status == 200


def test_v1_boolean_headers_and_null_maps() -> None:
    response = v1_response({"statusCode": 200, "headers": {"test-header": "value", "header-bool": True}})
    assert response.header("header-bool") == "true"
    assert v1_response({"statusCode": 200, "headers": None, "multiValueHeaders": None}).status == 200


def test_v1_merge_multi_first_and_multi_casing_wins() -> None:
    response = v1_response(
        {
            "statusCode": 200,
            "multiValueHeaders": {"tesT-Multi": ["value-multi"], "test-list": ["value1", "value2"]},
            "headers": {"test-multi": "value-solo"},
        }
    )
    assert [v for n, v in response.headers if n == "tesT-Multi"] == ["value-multi", "value-solo"]
    assert [v for n, v in response.headers if n == "test-list"] == ["value1", "value2"]


def test_v1_repeated_set_cookie_stays_separate_lines() -> None:
    # Folding Set-Cookie into one comma-joined line breaks cookies whose Expires has a comma.
    cookies = ["a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT", "b=2"]
    response = v1_response({"statusCode": 200, "multiValueHeaders": {"Set-Cookie": cookies}})
    assert [v for n, v in response.headers if n == "Set-Cookie"] == cookies


def test_v1_base64_decoded_only_when_accept_matches() -> None:
    result = {"statusCode": 200, "body": "dGVzdC1kYXRh", "isBase64Encoded": True}
    assert v1_response(result).body == b"dGVzdC1kYXRh"
    assert v1_response(result, accept="image/png", binary_media_types=("*/*",)).body == b"test-data"
    # Only the first Accept type counts.
    assert v1_response(result, accept="text/html, image/png", binary_media_types=("image/png",)).body == (
        b"dGVzdC1kYXRh"
    )


def test_v1_function_content_type_kept() -> None:
    response = v1_response({"statusCode": 200, "headers": {"Content-Type": "text/html"}, "body": "<p>"})
    assert response.header("content-type") == "text/html"
    assert [k for k, _ in response.headers if k.lower() == "content-type"] == ["Content-Type"]


def test_v2_inferred() -> None:
    response = v2_response({"hello": "world"})
    assert response.status == 200 and response.body == b'{"hello":"world"}'
    assert response.header("content-type") == "application/json"
    assert v2_response("plain").body == b"plain"


def test_v2_explicit_with_cookies_and_base64() -> None:
    response = v2_response(
        {"statusCode": 201, "cookies": ["a=1", "b=2"], "body": "aGk=", "isBase64Encoded": True}
    )
    assert response.status == 201 and response.body == b"hi"
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1", "b=2"]


@pytest.mark.parametrize("result", [{"statusCode": "x"}, {"statusCode": 200, "cookies": "a=1"}])
def test_v2_invalid(result: Any) -> None:
    with pytest.raises(IntegrationFailure):
        v2_response(result)


def test_binary_media_type_matching_rules() -> None:
    # Recorded on AWS (LocalStack test_aws_proxy_binary_response): exact or type/*, */* for all;
    # a left wildcard never matches, a wildcard Accept only an equal listed type.
    from server.events import media_type_matches

    listed = ("image/png", "*/test", "text/*")
    assert media_type_matches("image/png", listed)
    assert media_type_matches("text/csv; charset=utf-8", listed)
    assert not media_type_matches("image/jpg", listed)
    assert not media_type_matches("image/*", listed)
    assert not media_type_matches("*/test", listed)
    assert not media_type_matches("random/test", listed)
    assert not media_type_matches("*/*", listed)
    assert media_type_matches("anything/else", ("*/*",))

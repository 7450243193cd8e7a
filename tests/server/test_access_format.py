"""server/access_format.py: AWS's ``accessLogSettings.format`` compiled once, rendered per line."""

from __future__ import annotations

import json

import pytest

from server.access_format import compile_format

# AWS's documented JSON example for REST APIs (API Gateway developer guide, "CloudWatch log formats").
AWS_JSON = (
    '{ "requestId":"$context.requestId", "ip": "$context.identity.sourceIp", '
    '"requestTime":"$context.requestTime", "httpMethod":"$context.httpMethod",'
    '"routeKey":"$context.routeKey", "status":"$context.status",'
    '"protocol":"$context.protocol", "responseLength":"$context.responseLength" }'
)
AWS_CLF = (
    '$context.identity.sourceIp - - [$context.requestTime] "$context.httpMethod $context.routeKey '
    '$context.protocol" $context.status $context.responseLength $context.requestId'
)


def test_json_format_renders_one_json_line_with_dashes_for_missing_values() -> None:
    compiled = compile_format(AWS_JSON)
    assert compiled.variables == (
        "requestId", "identity.sourceIp", "requestTime", "httpMethod", "routeKey", "status", "protocol",
        "responseLength",
    )  # fmt: skip
    line = compiled.render(
        {"requestId": "r-1", "identity.sourceIp": "127.0.0.1", "httpMethod": "GET", "status": "200"}
    )
    assert "\n" not in line
    assert json.loads(line) == {
        "requestId": "r-1",
        "ip": "127.0.0.1",
        "requestTime": "-",
        "httpMethod": "GET",
        "routeKey": "-",
        "status": "200",
        "protocol": "-",
        "responseLength": "-",
    }


def test_json_values_are_escaped() -> None:
    compiled = compile_format('{"requestId":"$context.requestId","path":"$context.path"}')
    line = compiled.render({"requestId": "r", "path": '/a"b\\c\n'})
    assert json.loads(line)["path"] == '/a"b\\c\n'


def test_clf_format_is_left_as_is() -> None:
    line = compile_format(AWS_CLF).render(
        {
            "identity.sourceIp": "10.0.0.1",
            "requestTime": "04/Dec/2026:18:00:00 +0000",
            "httpMethod": "POST",
            "routeKey": "POST /items",
            "protocol": "HTTP/1.1",
            "status": "201",
            "responseLength": "12",
            "requestId": "abc",
        }
    )
    assert line == '10.0.0.1 - - [04/Dec/2026:18:00:00 +0000] "POST POST /items HTTP/1.1" 201 12 abc'


def test_variable_ends_before_a_trailing_dot_and_text_around_is_kept() -> None:
    compiled = compile_format("id=$context.requestId. end $context.status!")
    assert compiled.parts == ("id=", "requestId", ". end ", "status", "!")
    assert compiled.render({"requestId": "x", "status": "204"}) == "id=x. end 204!"


def test_variables_portway_does_not_fill_render_as_dash_and_are_named() -> None:
    # From AWS's REST CLF example (aws-api-gateway.md, section 10): caller and user are IAM-only.
    compiled = compile_format("$context.identity.caller $context.identity.user $context.requestId")
    assert compiled.unfilled == ("identity.caller", "identity.user")
    assert compiled.render({"requestId": "r"}) == "- - r"


def test_format_is_at_most_3_kb() -> None:
    with pytest.raises(ValueError, match="3072 bytes"):
        compile_format("$context.requestId" + "x" * 3072)


def test_format_must_carry_a_request_id() -> None:
    with pytest.raises(ValueError, match="requestId"):
        compile_format('{"status":"$context.status"}')
    assert compile_format("$context.extendedRequestId").variables == ("extendedRequestId",)

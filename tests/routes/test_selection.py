"""Selection expressions: AWS's documented vectors (aws-contract.md §1.2) and property tests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routes.selection import (
    EvaluationSources,
    SelectionSyntaxError,
    compile_expression,
    select_route,
    stringify,
)

PAYLOAD = {"service": "chat", "action": "join", "data": {"type": "msg", "items": [1, 2]}, "n": 5, "ok": True}


def evaluate(expression: str, body: Any = PAYLOAD) -> str:
    return compile_expression(expression).evaluate(EvaluationSources(body=body))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$request.body.action", "join"),
        ("${request.body.action}", "join"),
        ("${request.body.service}/${request.body.action}", "chat/join"),
        ("${request.body.action}-${request.body.invalidPath}", "join-"),
        ("action", "action"),
        ("\\$default", "$default"),
        ("$request.body.data.type", "msg"),
        ("$request.body.data.items[1]", "2"),
        ("$request.body['service']", "chat"),
        ("$request.body.n", "5"),
        ("$request.body.ok", "true"),
        ("$request.body.data.items", "[1, 2]"),
        ("$request.body.missing.deeper", ""),
        ("prefix-${request.body.action}", "prefix-join"),
        ("$", "$"),
    ],
)
def test_documented_vectors(expression: str, expected: str) -> None:
    assert evaluate(expression) == expected


def test_header_querystring_context_and_stage_variables() -> None:
    sources = EvaluationSources(
        headers={"X-Api-Key": "k1"},
        querystring={"room": "r1"},
        context={"authorizer": {"usageIdentifierKey": "u1"}},
        stage_variables={"env": "dev"},
    )
    assert compile_expression("$request.header.x-api-key").evaluate(sources) == "k1"
    assert compile_expression("$context.authorizer.usageIdentifierKey").evaluate(sources) == "u1"
    assert (
        compile_expression("${request.querystring.room}:${stageVariables.env}").evaluate(sources) == "r1:dev"
    )


@pytest.mark.parametrize("bad", ["${request.body.action", "$nope.x", "${request.other}"])
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(SelectionSyntaxError):
        compile_expression(bad)


ROUTES = {"join", "leave", "$default", "$connect", "$disconnect"}


@pytest.mark.parametrize(
    ("message", "routes", "expected"),
    [
        ('{"action":"join"}', ROUTES, "join"),
        ('{"action":"JOIN"}', ROUTES, "$default"),  # case-sensitive
        ('{"action":"unknown"}', ROUTES, "$default"),
        ("not json", ROUTES, "$default"),
        ("[1,2]", ROUTES, "$default"),
        ('{"action":"$connect"}', ROUTES, "$default"),  # predefined keys are never selected
        ('{"action":"join"}', {"leave"}, None),  # no match, no $default
        ("not json", {"join"}, None),
        (b'{"action":"leave"}', ROUTES, "leave"),
    ],
)
def test_route_selection(message: str | bytes, routes: set[str], expected: str | None) -> None:
    assert select_route(compile_expression("$request.body.action"), message, routes) == expected


def test_static_expression_selects_without_parsing() -> None:
    assert select_route(compile_expression("join"), "not json at all", {"join"}) == "join"


json_scalars = st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.none())
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), json_values, max_size=5),
    st.text(max_size=8),
)
def test_selection_is_total_and_matches_only_existing_keys(body: dict[str, Any], action: str) -> None:
    body["action"] = action
    message = json.dumps(body)
    key = select_route(compile_expression("$request.body.action"), message, ROUTES)
    expected = (
        action if action in ROUTES and not (action.startswith("$") and action != "$default") else "$default"
    )
    assert key == expected


@given(st.text(max_size=40))
def test_any_message_routes_somewhere_or_nowhere_but_never_raises(message: str) -> None:
    key = select_route(
        compile_expression("${request.body.a}-${request.body.b}"), message, {"x-y", "$default"}
    )
    assert key in {"x-y", "$default"}


@given(st.text(alphabet=st.characters(blacklist_characters="$\\"), max_size=20))
def test_literal_text_evaluates_to_itself(text: str) -> None:
    assert evaluate(text) == text


@given(json_values)
def test_stringify_never_raises(value: Any) -> None:
    assert isinstance(stringify(value), str)

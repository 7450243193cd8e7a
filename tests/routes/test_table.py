"""Routing precedence (aws-contract.md §2.1): literal > {param} > {greedy+}, ANY fallback, REST vs
HTTP API."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routes.table import RouteTable, split_path
from server.config.model import IntegrationConfig, IntegrationType, RouteConfig

MOCK = IntegrationConfig(type=IntegrationType.MOCK)


def table(*keys: str, http_api: bool = False) -> RouteTable:
    routes = []
    for key in keys:
        method, _, path = key.partition(" ")
        routes.append(RouteConfig(method=method, path=path or "$default", integration=MOCK))
    return RouteTable(routes, http_api=http_api)


REST = table(
    "GET /",
    "GET /pets",
    "POST /pets",
    "GET /pets/{id}",
    "ANY /pets/{id}",
    "DELETE /pets/{id}",
    "GET /pets/dog",
    "GET /pets/{id}/toys",
    "ANY /{proxy+}",
    "GET /files/{path+}",
    "GET /a/b",
    "GET /a/{x}/c",
)


@pytest.mark.parametrize(
    ("method", "path", "expected", "params"),
    [
        ("GET", "/", "GET /", {}),
        ("GET", "/pets", "GET /pets", {}),
        ("GET", "/pets/", "GET /pets", {}),  # one trailing slash is ignored
        ("POST", "/pets", "POST /pets", {}),
        ("GET", "/pets/dog", "GET /pets/dog", {}),  # literal beats parameter
        ("GET", "/pets/cat", "GET /pets/{id}", {"id": "cat"}),  # parameter beats greedy
        ("PUT", "/pets/cat", "ANY /pets/{id}", {"id": "cat"}),  # ANY fallback on the resource
        ("DELETE", "/pets/cat", "DELETE /pets/{id}", {"id": "cat"}),  # explicit method beats ANY
        ("GET", "/pets/cat/toys", "GET /pets/{id}/toys", {"id": "cat"}),
        ("GET", "/pets/cat/food", "ANY /{proxy+}", {"proxy": "pets/cat/food"}),
        ("GET", "/files/a/b/c.txt", "GET /files/{path+}", {"path": "a/b/c.txt"}),
        ("GET", "/files/a/b/", "GET /files/{path+}", {"path": "a/b"}),  # greedy drops trailing slash
        ("GET", "/x//double", "ANY /{proxy+}", {"proxy": "x//double"}),  # double slashes kept
        ("GET", "/a/b/c", "GET /a/{x}/c", {"x": "b"}),  # backtracks from literal /a/b
        ("GET", "/pets/a%2Bb", "GET /pets/{id}", {"id": "a%2Bb"}),  # values stay percent-encoded
        ("GET", "/pet%73", "GET /pets", {}),  # literals compare decoded
    ],
)
def test_rest_precedence(method: str, path: str, expected: str, params: dict[str, str]) -> None:
    match = REST.match(method, path)
    assert match is not None
    assert match.route.route_key == expected
    assert match.path_parameters == params


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/pets"),  # resource exists without the method: no fallback to /{proxy+} (REST)
        ("HEAD", "/pets"),  # HEAD is not mapped to GET
        ("POST", "/a/b"),
    ],
)
def test_rest_resource_without_method_is_a_miss(method: str, path: str) -> None:
    assert REST.match(method, path) is None


def test_greedy_does_not_match_its_parent() -> None:
    t = table("ANY /{proxy+}")
    assert t.match("GET", "/") is None
    assert t.match("GET", "/x") is not None


def test_resource_template_is_reported() -> None:
    match = REST.match("GET", "/pets/1/toys")
    assert match is not None and match.resource == "/pets/{id}/toys"


HTTP = table(
    "GET /pets/{proxy+}",
    "ANY /{proxy+}",
    "GET /pets",
    "$default",
    http_api=True,
)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/pets/cat/1", "GET /pets/{proxy+}"),  # AWS doc example
        ("POST", "/test/5", "ANY /{proxy+}"),  # AWS doc example: greedy beats $default
        ("POST", "/pets", "ANY /{proxy+}"),  # HTTP API: method is part of the route, falls through
        ("GET", "/pets", "GET /pets"),
        ("GET", "/", "$default"),
    ],
)
def test_http_api_precedence(method: str, path: str, expected: str) -> None:
    match = HTTP.match(method, path)
    assert match is not None and match.route.route_key == expected


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("GET /{proxy+}/x",), "greedy"),
        (("GET /a/{x}", "GET /a/{y}/b"), "conflicting variable names"),
        (("GET /a", "GET /a"), "duplicate"),
    ],
)
def test_invalid_tables_are_rejected(keys: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table(*keys)


def test_split_path() -> None:
    assert split_path("/") == []
    assert split_path("/a/") == ["a"]
    assert split_path("/a//b") == ["a", "", "b"]


segment = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6)


@given(st.lists(segment, min_size=1, max_size=5))
def test_any_path_under_greedy_root_matches_with_exact_value(segments: list[str]) -> None:
    t = table("ANY /{proxy+}")
    path = "/" + "/".join(segments)
    match = t.match("GET", path)
    assert match is not None and match.path_parameters == {"proxy": "/".join(segments)}


@given(st.lists(segment, min_size=1, max_size=4), st.sampled_from(["GET", "POST", "DELETE"]))
def test_literal_route_always_beats_variables(segments: list[str], method: str) -> None:
    path = "/" + "/".join(segments)
    variable = "/" + "/".join(f"{{p{i}}}" for i in range(len(segments)))
    t = table(f"ANY {path}", f"ANY {variable}", "ANY /{proxy+}")
    match = t.match(method, path)
    assert match is not None and match.route.path == path

"""Integration URI templates: compile once, substitute stage variables and path parameters."""

from __future__ import annotations

import pytest

from routes.integrations._uri import MissingPathParameter, UriTemplate, append_query, requote

STAGE = {"host": "backend.internal:8080", "p": "v2", "q": "a=1&b=2", "scheme": "https"}


@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        ("http://example.com/pets", {}, "http://example.com/pets"),
        # stage variables: whole value, host, path segment, partial segment, query value
        ("${stageVariables.scheme}://x/y", {}, "https://x/y"),
        ("http://${stageVariables.host}/path", {}, "http://backend.internal:8080/path"),
        ("http://example.com/${stageVariables.p}/bar", {}, "http://example.com/v2/bar"),
        ("http://example.com/api-${stageVariables.p}-x", {}, "http://example.com/api-v2-x"),
        ("http://example.com/r?${stageVariables.q}", {}, "http://example.com/r?a=1&b=2"),
        ("http://example.com/r?q=${stageVariables.p}", {}, "http://example.com/r?q=v2"),
        # undefined stage variable: empty string
        ("http://example.com/${stageVariables.nope}x", {}, "http://example.com/x"),
        # path parameters, greedy values keep "/" and their percent-encoding
        ("http://h/pets/{id}", {"id": "7"}, "http://h/pets/7"),
        ("http://h/{proxy}", {"proxy": "a/b/c"}, "http://h/a/b/c"),
        ("http://h/{proxy+}", {"proxy": "a/b%2Fc/d%20e"}, "http://h/a/b%2Fc/d%20e"),
        ("http://h/{a}/{b}/{a}", {"a": "1", "b": "2"}, "http://h/1/2/1"),
        ("http://${stageVariables.host}/{proxy}", {"proxy": "x"}, "http://backend.internal:8080/x"),
        # other ${...} and malformed braces are literal text
        ("http://h/${other.x}/{}", {}, "http://h/${other.x}/{}"),
    ],
)
def test_render(template: str, params: dict[str, str], expected: str) -> None:
    assert UriTemplate(template).render(params, STAGE) == expected


def test_compiled_once_and_introspectable() -> None:
    template = UriTemplate("http://${stageVariables.host}/a/{id}/{proxy+}")
    assert template.path_parameters == ("id", "proxy")
    assert template.stage_variables == ("host",)
    assert not template.is_static
    static = UriTemplate("http://h/x")
    assert static.is_static
    assert static.render({}, {}) is static.source


def test_missing_path_parameter() -> None:
    with pytest.raises(MissingPathParameter) as info:
        UriTemplate("http://h/{id}").render({"other": "1"}, {})
    assert info.value.name == "id"


@pytest.mark.parametrize(
    ("url", "query", "expected"),
    [
        ("http://h/p", "", "http://h/p"),
        ("http://h/p", "a=1", "http://h/p?a=1"),
        ("http://h/p?x=1", "a=1&a=2", "http://h/p?x=1&a=1&a=2"),
        ("http://h/p?", "a=1", "http://h/p?a=1"),
        ("http://h/p?x=1&", "a=1", "http://h/p?x=1&a=1"),
        ("http://h/p#frag", "a=1", "http://h/p?a=1"),
        ("http://h/p?x=1#frag", "", "http://h/p?x=1"),
        ("http://h/p", "q=a%20b+c&e=%26", "http://h/p?q=a%20b+c&e=%26"),
    ],
)
def test_append_query(url: str, query: str, expected: str) -> None:
    assert append_query(url, query) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/a%2Fb?x=%20&y=1", "http://h/a%2Fb?x=%20&y=1"),  # nothing to do: same object
        ("http://h/a b", "http://h/a%20b"),
        ("http://h/caf\u00e9?q=\u00fc", "http://h/caf%C3%A9?q=%C3%BC"),
        ("http://h/x\r\n", "http://h/x%0D%0A"),
    ],
)
def test_requote(url: str, expected: str) -> None:
    assert requote(url) == expected
    if url == expected:
        assert requote(url) is url

"""The stage cache's pure core: Cache-Control parsing, keys, the stored entry's encoding, rules."""

from __future__ import annotations

import pytest

from server.cache.entry import decode, encode
from server.cache.keys import cache_key, parameter_problem, stage_prefix
from server.cache.policy import method_cache, wants_fresh
from server.config.model import (
    CacheSettings,
    IntegrationConfig,
    IntegrationType,
    RouteCache,
    RouteConfig,
    StageConfig,
)
from server.messages import HttpRequest, HttpResponse


@pytest.mark.parametrize(
    ("header", "fresh"),
    [
        (None, False),
        ("", False),
        ("max-age=0", True),
        ("no-cache, MAX-AGE = 0", True),
        ('max-age="0"', True),
        ("max-age=00", False),
        ("max-age=60", False),
        ("no-store", False),
        ("s-maxage=0", False),
    ],
)
def test_wants_fresh(header: str | None, fresh: bool) -> None:
    assert wants_fresh(header) is fresh


def request(query: str = "", *headers: tuple[str, str]) -> HttpRequest:
    return HttpRequest("GET", "/dev/x", query, headers, b"", "10.0.0.1", "h")


def test_keys() -> None:
    params = ("method.request.multivaluequerystring.a", "method.request.querystring.b")
    key = cache_key("api", "dev", "GET", "/x", params, request("a=1&a=2&b=1&b=2"), None)
    assert key.startswith(stage_prefix("api", "dev")) and len(key) == len("api/dev/") + 64
    # multivalue keeps every value in order; the single-value view the last one.
    assert key == cache_key("api", "dev", "GET", "/x", params, request("b=2&a=1&a=2"), None)
    assert key != cache_key("api", "dev", "GET", "/x", params, request("a=2&a=1&b=2"), None)
    assert key != cache_key("api", "dev", "HEAD", "/x", params, request("a=1&a=2&b=2"), None)
    assert key != cache_key("api", "prod", "GET", "/x", params, request("a=1&a=2&b=2"), None)


@pytest.mark.parametrize(
    ("parameter", "problem"),
    [
        ("method.request.querystring.x", None),
        ("method.request.header.X-Y", None),
        ("method.request.path.id", None),
        ("method.request.body.x", "source must be one of"),
        ("request.path.id", "must start with"),
        ("method.request.header.", "names no parameter"),
    ],
)
def test_parameter_problem(parameter: str, problem: str | None) -> None:
    found = parameter_problem(parameter)
    assert found is None if problem is None else found is not None and problem in found


def test_entry_roundtrip_and_garbage() -> None:
    response = HttpResponse(404, [("A", "1"), ("A", "2"), ("Set-Cookie", "x=y")], b"\x00body")
    entry = decode(encode(response, 123.5))
    assert entry is not None and entry.expires_at == 123.5
    again = entry.response()
    assert (again.status, again.headers, again.body) == (404, response.headers, b"\x00body")
    again.headers.append(("B", "3"))  # each answer gets its own header list
    assert entry.response().headers == response.headers
    for garbage in (b"", b"\x00\x00", b"\x00\x00\x00\x05{bad}", b"\x00\x00\x00\x02{}"):
        assert decode(garbage) is None


def test_rules() -> None:
    mock = IntegrationConfig(IntegrationType.MOCK)
    on = StageConfig("dev", cache=CacheSettings(ttl_s=30))
    assert method_cache(StageConfig("dev"), RouteConfig("GET", "/x", mock)) is None
    assert (
        method_cache(StageConfig("dev", cache=CacheSettings(enabled=False)), RouteConfig("GET", "/x", mock))
        is None
    )
    rules = method_cache(on, RouteConfig("GET", "/x", mock))
    assert rules is not None and rules.ttl_s == 30 and rules.applies("GET") and not rules.applies("HEAD")
    assert method_cache(on, RouteConfig("DELETE", "/x", mock)) is None
    deleting = method_cache(on, RouteConfig("DELETE", "/x", mock, cache=RouteCache(enabled=True, ttl_s=5)))
    assert deleting is not None and deleting.ttl_s == 5 and deleting.applies("DELETE")
    any_route = method_cache(on, RouteConfig("ANY", "/x", mock, cache=RouteCache(enabled=True)))
    assert any_route is not None and any_route.applies("GET") and not any_route.applies("POST")
    assert method_cache(on, RouteConfig("GET", "/x", mock, cache=RouteCache(ttl_s=0))) is None

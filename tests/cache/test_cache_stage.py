"""The cache phase in the real pipeline (no sockets), on the embedded store and on a real Redis,
with an injected clock: hit and miss, TTL expiry, cache key parameters, GET-only default and the
per-method override, ``Cache-Control: max-age=0`` under each unauthorized-caller strategy.
aws-contract.md §4 (the reference's §4) is the behaviour followed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from routes.dispatch import ApiDispatcher
from server.auth.base import AuthResult
from server.config.model import (
    ApiConfig,
    ApiKind,
    CacheControlStrategy,
    CacheSettings,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    RouteCache,
    RouteConfig,
    StageConfig,
)
from server.events import RequestInfo
from server.messages import HttpRequest, HttpResponse
from server.pipeline import Gateway, RequestContext, default_stages
from server.stages.cache import CacheStage
from server.store.base import Store
from server.store.memory import MemoryStore
from server.store.redis import RedisStore

MOCK = IntegrationConfig(IntegrationType.MOCK)
PETS = RouteConfig("GET", "/pets", MOCK)
PET = RouteConfig(
    "GET",
    "/pets/{id}",
    MOCK,
    cache=RouteCache(key_parameters=("method.request.path.id", "method.request.querystring.type")),
)
HEADERS = RouteConfig(
    "GET", "/lang", MOCK, cache=RouteCache(key_parameters=("method.request.header.Accept-Language",))
)
SHORT = RouteConfig("GET", "/short", MOCK, cache=RouteCache(ttl_s=10))
OFF = RouteConfig("GET", "/off", MOCK, cache=RouteCache(enabled=False))
ZERO = RouteConfig("GET", "/zero", MOCK, cache=RouteCache(ttl_s=0))
POST = RouteConfig("POST", "/pets", MOCK)
POST_CACHED = RouteConfig("POST", "/search", MOCK, cache=RouteCache(enabled=True))
ANY = RouteConfig("ANY", "/any", MOCK)
ROUTES = (PETS, PET, HEADERS, SHORT, OFF, ZERO, POST, POST_CACHED, ANY)


def config(**cache: object) -> GatewayConfig:
    stages = (StageConfig("dev", cache=CacheSettings(**cache)), StageConfig("nocache"))  # type: ignore[arg-type]
    api = ApiConfig("pets", "abc123", ApiKind.REST, stages, ROUTES)
    return GatewayConfig(apis=(api,), source=Path("test.yaml"))


class Counting:
    """An integration answering with how often it was called, per route."""

    def __init__(self) -> None:
        self.calls = 0

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        self.calls += 1
        body = orjson.dumps({"n": self.calls, "path": info.path})
        return HttpResponse(201, [("Content-Type", "application/json"), ("X-Backend", "b1")], body)

    async def close(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Iam:
    """An authorize phase standing in for SigV4 success: the caller is an IAM user."""

    async def on_request(self, ctx: RequestContext) -> HttpResponse | None:
        if ctx.request.header("x-test-iam"):
            ctx.auth = AuthResult(identity={"accessKey": "AKIDEXAMPLE"})
        return None


class Rig:
    def __init__(self, store: Store, cfg: GatewayConfig) -> None:
        self.clock = Clock()
        self.backend = Counting()
        self.cache = CacheStage(store, clock=self.clock)
        routes = cfg.apis[0].routes
        integrations = {id(route): self.backend for route in routes}
        self.gateway = Gateway(
            default_stages(ApiDispatcher(cfg), cfg, integrations, authorize=Iam(), cache=self.cache)
        )

    async def call(self, path: str, method: str = "GET", query: str = "", **headers: str) -> HttpResponse:
        pairs = tuple((k.replace("_", "-"), v) for k, v in headers.items())
        request = HttpRequest(method, path, query, pairs, b"", "10.0.0.1", "example.com")
        return await self.gateway.handle(request)

    async def n(self, path: str, method: str = "GET", query: str = "", **headers: str) -> int:
        response = await self.call(path, method, query, **headers)
        assert response.status == 201, response.body
        value: int = orjson.loads(response.body)["n"]
        return value


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    made: Store = (
        MemoryStore()
        if request.param == "embedded"
        else RedisStore(request.getfixturevalue("clean_redis_url"))
    )
    await made.start()
    yield made
    await made.close()


@pytest.fixture
def rig(store: Store) -> Rig:
    return Rig(store, config())


async def test_miss_then_hit_serves_what_the_integration_returned(rig: Rig) -> None:
    first = await rig.call("/dev/pets")
    second = await rig.call("/dev/pets")
    assert rig.backend.calls == 1
    assert second.status == 201 and second.body == first.body
    names = [name for name, _ in second.headers]
    assert ("X-Backend", "b1") in second.headers and ("Content-Type", "application/json") in second.headers
    # No cache-status header: AWS adds none (aws-contract.md §4); each answer has its own request id.
    assert not any("cache" in name.lower() for name in names)
    assert first.header("x-amzn-RequestId") != second.header("x-amzn-RequestId")
    assert (rig.cache.hits, rig.cache.misses) == (1, 1)


async def test_ttl_expiry_on_the_injected_clock(rig: Rig) -> None:
    assert await rig.n("/dev/short") == 1
    rig.clock.now += 9.9
    assert await rig.n("/dev/short") == 1
    rig.clock.now += 0.2  # 10.1 s: the route's 10 s TTL passed
    assert await rig.n("/dev/short") == 2
    assert await rig.n("/dev/pets") == 3
    rig.clock.now += 299
    assert await rig.n("/dev/pets") == 3  # the stage's default 300 s
    rig.clock.now += 2
    assert await rig.n("/dev/pets") == 4


async def test_key_parameters_vary_the_key_and_others_do_not(rig: Rig) -> None:
    assert await rig.n("/dev/pets/1", query="type=cat&color=red") == 1
    assert await rig.n("/dev/pets/1", query="color=blue&type=cat") == 1  # color is not a key
    assert await rig.n("/dev/pets/1", query="type=dog") == 2
    assert await rig.n("/dev/pets/2", query="type=dog") == 3  # path parameter
    assert await rig.n("/dev/pets/2") == 4  # absent differs from any value
    assert await rig.n("/dev/pets/2", query="type=") == 5  # ... and from empty
    assert await rig.n("/dev/lang", accept_language="en") == 6
    assert await rig.n("/dev/lang", ACCEPT_LANGUAGE="en") == 6  # header names are case-insensitive
    assert await rig.n("/dev/lang", accept_language="fr") == 7
    # Without declared parameters, the query does not vary the key at all.
    assert await rig.n("/dev/pets", query="a=1") == 8
    assert await rig.n("/dev/pets", query="a=2") == 8


async def test_only_get_by_default_and_the_method_override(rig: Rig) -> None:
    assert [await rig.n("/dev/pets", "POST") for _ in range(2)] == [1, 2]
    assert [await rig.n("/dev/search", "POST") for _ in range(2)] == [3, 3]  # enabled: true
    assert [await rig.n("/dev/any", "GET") for _ in range(2)] == [4, 4]
    assert [await rig.n("/dev/any", "PUT") for _ in range(2)] == [5, 6]  # ANY: GET only
    assert [await rig.n("/dev/off") for _ in range(2)] == [7, 8]  # enabled: false
    assert [await rig.n("/dev/zero") for _ in range(2)] == [9, 10]  # ttl 0 = off
    assert [await rig.n("/nocache/pets") for _ in range(2)] == [11, 12]  # stage without cache


async def test_stages_are_cached_apart(store: Store) -> None:
    cfg = config()
    api = cfg.apis[0]
    both = replace(api, stages=(api.stages[0], StageConfig("prod", cache=CacheSettings())))
    rig = Rig(store, replace(cfg, apis=(both,)))
    assert await rig.n("/dev/pets") == 1
    assert await rig.n("/prod/pets") == 2
    assert await rig.n("/dev/pets") == 1


async def test_invalidation_by_an_allowed_caller_refreshes_the_entry(rig: Rig) -> None:
    assert await rig.n("/dev/pets") == 1
    assert await rig.n("/dev/pets", cache_control="max-age=0", x_test_iam="1") == 2
    assert await rig.n("/dev/pets") == 2  # the entry was replaced


@pytest.mark.parametrize(
    ("strategy", "status", "warned"),
    [
        (CacheControlStrategy.FAIL_WITH_403, 403, False),
        (CacheControlStrategy.SUCCEED_WITH_RESPONSE_HEADER, 201, True),
        (CacheControlStrategy.SUCCEED_WITHOUT_RESPONSE_HEADER, 201, False),
    ],
)
async def test_unauthorized_invalidation_strategies(
    store: Store, strategy: CacheControlStrategy, status: int, warned: bool
) -> None:
    rig = Rig(store, config(unauthorized_strategy=strategy))
    assert await rig.n("/dev/pets") == 1
    response = await rig.call("/dev/pets", cache_control="no-cache, max-age=0")
    assert response.status == status
    if status == 403:
        assert orjson.loads(response.body) == {"Message": "User is not authorized to access this resource"}
        assert response.header("x-amzn-ErrorType") == "AccessDeniedException"
    else:
        assert orjson.loads(response.body)["n"] == 1  # the header was ignored: served from cache
    assert (response.header("Warning") is not None) is warned
    assert rig.backend.calls == 1
    # An IAM caller may, whatever the strategy.
    assert await rig.n("/dev/pets", cache_control="max-age=0", x_test_iam="1") == 2


async def test_invalidation_open_to_all_without_require_authorization(store: Store) -> None:
    rig = Rig(store, config(require_authorization=False))
    assert await rig.n("/dev/pets") == 1
    assert await rig.n("/dev/pets", cache_control="max-age=0") == 2
    assert await rig.n("/dev/pets", cache_control="max-age=60") == 2  # only max-age=0 invalidates


async def test_errors_are_not_cached_and_a_hit_skips_nothing_before_it(store: Store) -> None:
    rig = Rig(store, config())
    # A path the route table does not know is answered before the cache phase.
    assert (await rig.call("/dev/nope")).status == 403
    assert rig.cache.hits + rig.cache.misses == 0


async def test_a_failing_store_serves_uncached(store: Store) -> None:
    rig = Rig(store, config())
    await store.close()
    assert [await rig.n("/dev/pets") for _ in range(2)] == [1, 2]
    assert rig.cache.store_errors >= 2

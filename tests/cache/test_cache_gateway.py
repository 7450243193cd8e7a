"""The stage cache end to end: a real gateway (aiohttp client) in front of a real HTTP backend
(HTTP_PROXY), on the embedded store and on a real redis-server; FlushStageCache through boto3's
``apigateway`` client; two gateway apps sharing one redis-server share the cache (hit, miss,
invalidation and flush seen across nodes); the hit/miss counters on ``/@metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botocore.exceptions import ClientError

from server.app import create_app
from server.config.model import (
    ApiConfig,
    ApiKind,
    CacheSettings,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    RouteCache,
    RouteConfig,
    StageConfig,
)
from tests.admin.conftest import ACCESS_KEY, SECRET_KEY, TOKEN, boto_client

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


class Counter:
    """The backend: answers 200 with how many requests it has had, and a header of its own."""

    def __init__(self) -> None:
        self.calls = 0
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = {"n": self.calls, "path": request.path, "query": request.query_string}
        return web.json_response(body, headers={"X-Backend": "counter", "Set-Cookie": "a=b"})

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port


@pytest.fixture
async def counter() -> AsyncIterator[Counter]:
    made = Counter()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", made.handle)
    made.server = TestServer(app, port=0)
    await made.server.start_server()
    yield made
    await made.server.close()


def gateway_config(counter: Counter) -> GatewayConfig:
    def proxied(method: str, path: str, cache: RouteCache | None = None) -> RouteConfig:
        uri = f"http://127.0.0.1:{counter.port}{path}"
        return RouteConfig(method, path, IntegrationConfig(IntegrationType.HTTP_PROXY, uri=uri), cache=cache)

    by_type = RouteCache(key_parameters=("method.request.querystring.type",))
    api = ApiConfig(
        "pets",
        "petsid",
        ApiKind.REST,
        (StageConfig("dev", cache=CacheSettings(require_authorization=False)), StageConfig("prod")),
        (proxied("GET", "/pets", by_type), proxied("POST", "/pets")),
    )
    return GatewayConfig(apis=(api,))


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTWAY_ADMIN_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("PORTWAY_ADMIN_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("PORTWAY_ADMIN_TOKEN", TOKEN)


async def n_of(client: TestClient[Any, Any], path: str = "/dev/pets", **headers: str) -> int:
    async with client.get(path, headers=headers) as response:
        assert response.status == 200, await response.text()
        value: int = orjson.loads(await response.read())["n"]
        return value


async def test_hit_is_the_backend_response_without_calling_it(
    aiohttp_client: Client, counter: Counter, store_url: str | None
) -> None:
    client = await aiohttp_client(create_app(gateway_config(counter), redis_url=store_url))
    async with client.get("/dev/pets?type=cat") as first:
        first_body = await first.read()
    async with client.get("/dev/pets?type=cat") as second:
        assert second.status == 200
        assert await second.read() == first_body
        assert second.headers["X-Backend"] == "counter" and second.headers["Set-Cookie"] == "a=b"
        assert second.headers["Content-Type"].startswith("application/json")
        assert not [name for name in second.headers if "cache" in name.lower()]  # AWS adds none
        assert second.headers["x-amzn-RequestId"] != first.headers["x-amzn-RequestId"]
    assert counter.calls == 1
    assert await n_of(client, "/dev/pets?type=dog") == 2
    assert await n_of(client, "/prod/pets?type=dog") == 3  # a stage without cache
    assert await n_of(client, "/prod/pets?type=dog") == 4
    async with client.post("/dev/pets") as posted:
        assert posted.status == 200
    async with client.post("/dev/pets") as posted:
        assert orjson.loads(await posted.read())["n"] == 6  # POST is not cached
    async with client.get("/@metrics") as metrics:
        text = await metrics.text()
    assert 'portway_cache_lookups_total{result="hit"} 1.0' in text
    assert 'portway_cache_lookups_total{result="miss"} 2.0' in text


async def test_flush_stage_cache_with_boto3(
    aiohttp_client: Client, counter: Counter, store_url: str | None, admin_env: None
) -> None:
    client = await aiohttp_client(create_app(gateway_config(counter), redis_url=store_url))
    boto = boto_client(client)
    assert [await n_of(client) for _ in range(2)] == [1, 1]
    await boto.flush_stage_cache(restApiId="petsid", stageName="dev")
    assert [await n_of(client) for _ in range(2)] == [2, 2]
    await boto.flush_stage_cache(restApiId="petsid", stageName="prod")  # no entries: fine
    with pytest.raises(ClientError) as stage:
        await boto.flush_stage_cache(restApiId="petsid", stageName="nope")
    assert stage.value.response["Error"] == {
        "Code": "NotFoundException",
        "Message": "Invalid stage identifier specified",
    }
    with pytest.raises(ClientError) as api:
        await boto.flush_stage_cache(restApiId="nope", stageName="dev")
    assert api.value.response["Error"]["Message"] == "Invalid API identifier specified"
    assert await n_of(client) == 2


@pytest.mark.redis
async def test_two_nodes_on_one_redis_share_the_cache(
    aiohttp_client: Client, counter: Counter, clean_redis_url: str, admin_env: None
) -> None:
    config = gateway_config(counter)
    node_a = await aiohttp_client(create_app(config, redis_url=clean_redis_url))
    node_b = await aiohttp_client(create_app(config, redis_url=clean_redis_url))
    assert await n_of(node_a) == 1  # miss on A
    assert await n_of(node_b) == 1  # hit on B: A's entry
    assert counter.calls == 1
    # Invalidation on B (requireAuthorization off for this stage) refreshes the entry A serves.
    assert await n_of(node_b, **{"Cache-Control": "max-age=0"}) == 2
    assert await n_of(node_a) == 2
    # A flush through A's admin API empties it for B as well.
    await boto_client(node_a).flush_stage_cache(restApiId="petsid", stageName="dev")
    assert await n_of(node_b) == 3
    assert await n_of(node_a) == 3
    assert counter.calls == 3

"""The key source (server/auth/jwks.py) against a real local issuer on port 0: discovery,
caching, refetch on an unknown kid (once, rate-limited, concurrent misses coalesced), stale keys
kept when a refresh fails, the timeout and the body limit (aws-contract.md §5.4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.auth.jwks import JwksSource, KeysUnavailable
from tests.auth.jwt_issuer import Issuer, issuer

__all__ = ["issuer"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def source(issuer: Issuer) -> AsyncIterator[tuple[JwksSource, Clock]]:
    clock = Clock()
    keys = JwksSource(issuer.url, clock=clock)
    yield keys, clock
    await keys.close()


async def test_discovery_then_jwks_fetched_once_and_cached(
    issuer: Issuer, source: tuple[JwksSource, Clock]
) -> None:
    keys, _ = source
    assert list(await keys.keys()) == ["k1"]
    for _ in range(5):
        await keys.keys()
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


async def test_a_configured_jwks_uri_skips_discovery(issuer: Issuer) -> None:
    keys = JwksSource(issuer.url, issuer.url + "/.well-known/jwks.json")
    try:
        assert list(await keys.keys()) == ["k1"]
    finally:
        await keys.close()
    assert issuer.hits == {"/.well-known/jwks.json": 1}


async def test_unknown_kid_refetches_once_within_the_rate_limit(
    issuer: Issuer, source: tuple[JwksSource, Clock]
) -> None:
    keys, clock = source
    await keys.keys()
    issuer.rotate("k2")
    assert "k2" in await keys.refresh_for("k2")  # rotation: the first load starts no interval
    assert issuer.hits["/jwks"] == 2
    assert "k2" in await keys.refresh_for("k2")  # known now: no fetch
    issuer.rotate("k3")
    clock.now += 29
    assert "k3" not in await keys.refresh_for("k3")  # within 30 s of the last fetch: none
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        await keys.refresh_for(kid)
    assert issuer.hits["/jwks"] == 2
    clock.now += 1
    assert "k3" in await keys.refresh_for("k3")
    assert issuer.hits["/jwks"] == 3
    assert issuer.hits["/.well-known/openid-configuration"] == 1  # jwks_uri discovered once


async def test_concurrent_misses_share_one_fetch(issuer: Issuer, source: tuple[JwksSource, Clock]) -> None:
    keys, clock = source
    await keys.keys()
    issuer.rotate("k2")
    clock.now += 60
    results = await asyncio.gather(*(keys.refresh_for("k2") for _ in range(20)))
    assert all("k2" in result for result in results)
    assert issuer.hits["/jwks"] == 2


async def test_stale_keys_are_kept_when_a_refresh_fails(
    issuer: Issuer, source: tuple[JwksSource, Clock]
) -> None:
    keys, clock = source
    await keys.keys()
    issuer.fail = True
    clock.now += 60
    assert list(await keys.refresh_for("k9")) == ["k1"]  # the failed refresh kept k1
    assert keys.fetches == 2


async def test_no_keys_at_all_raises_and_retries_only_after_the_interval(
    issuer: Issuer, source: tuple[JwksSource, Clock]
) -> None:
    keys, clock = source
    issuer.fail = True
    with pytest.raises(KeysUnavailable):
        await keys.keys()
    issuer.fail = False
    with pytest.raises(KeysUnavailable):  # rate-limited: no new attempt yet
        await keys.keys()
    assert keys.fetches == 1
    clock.now += 30
    assert list(await keys.keys()) == ["k1"]


async def test_unreachable_issuer_raises() -> None:
    keys = JwksSource("http://127.0.0.1:9/issuer")  # discard port: connection refused
    try:
        with pytest.raises(KeysUnavailable):
            await keys.keys()
    finally:
        await keys.close()


@pytest.fixture
async def odd_server() -> AsyncIterator[TestServer]:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"keys": []})

    async def big(request: web.Request) -> web.StreamResponse:
        # Chunked (no Content-Length): the limit must hold while reading, not only on the header.
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"keys": [' + b" " * 200_000 + b"]}")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield server
    await server.close()


async def test_a_slow_jwks_endpoint_times_out(odd_server: TestServer) -> None:
    keys = JwksSource("http://issuer", f"http://127.0.0.1:{odd_server.port}/slow", timeout_s=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(KeysUnavailable):
            await keys.keys()
    finally:
        await keys.close()
    assert loop.time() - started < 2


async def test_a_jwks_over_150000_bytes_is_refused(odd_server: TestServer) -> None:
    keys = JwksSource("http://issuer", f"http://127.0.0.1:{odd_server.port}/big")
    try:
        with pytest.raises(KeysUnavailable):
            await keys.keys()
    finally:
        await keys.close()

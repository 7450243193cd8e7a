"""Shared fixtures (a pytest plugin, listed in tests/conftest.py).

* ``backend``: an aiohttp server on port 0 answering ``{"ok": true}`` to anything and counting
  requests per path: what an integration behind the gateway received.
* ``store_url``: parametrises a test over both stores: ``None`` (embedded) and a freshly
  flushed real Redis (``clean_redis_url`` from tests/redis_fixture.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


class Backend:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        return web.json_response({"ok": True})

    @property
    def total(self) -> int:
        return sum(self.hits.values())

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    counter = Backend()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", counter.handle)
    server = TestServer(app, port=0)
    await server.start_server()
    counter.server = server
    yield counter
    await server.close()


@pytest.fixture(params=["embedded", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "embedded":
        return None
    url: str = request.getfixturevalue("clean_redis_url")
    return url

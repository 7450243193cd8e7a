"""The authorizer result cache lives in the store: two gateway nodes on one real redis-server share
it (a result cached by one node is not asked again by the other), and the cached policy is still
evaluated against each request's own method ARN on either node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from tests.auth.conftest import InvocationLog, write_config

CONFIG = """
portway: 1
apis:
  - name: pets
    id: petsapi
    codeDir: CODE
    authorizers:
      cached:
        type: request
        function: {python: authorizers.policy, isolation: process}
        identitySource: method.request.header.Authorization
        resultTtlInSeconds: 60
      off:
        type: request
        function: {python: authorizers.policy, isolation: process}
        identitySource: method.request.header.Authorization
        resultTtlInSeconds: 0
    routes:
      GET /a: {mock: {body: a}, authorizer: cached}
      POST /a: {mock: {body: a}, authorizer: cached}
      GET /off: {mock: {body: off}, authorizer: off}
"""


@pytest.fixture
async def nodes(tmp_path: Path, clean_redis_url: str, auth_log: InvocationLog) -> AsyncIterator[list[str]]:
    config = write_config(tmp_path, CONFIG)
    # AUTH_LOG reaches worker processes only when passed through (they get Lambda's environment).
    apps = [create_app(config, redis_url=clean_redis_url, pass_env=("AUTH_LOG",)) for _ in range(2)]
    servers = [TestServer(app, port=0) for app in apps]
    for server in servers:
        await server.start_server()
    yield [f"http://127.0.0.1:{server.port}" for server in servers]
    for server in servers:
        await server.close()


async def status(session: aiohttp.ClientSession, method: str, url: str, token: str) -> int:
    async with session.request(method, url, headers={"Authorization": token}) as response:
        await response.read()
        return response.status


async def test_second_node_uses_the_first_nodes_cached_result(
    nodes: list[str], auth_log: InvocationLog
) -> None:
    one, two = nodes
    async with aiohttp.ClientSession() as session:
        assert await status(session, "GET", f"{one}/dev/a", "exact") == 200
        assert len(auth_log) == 1
        for _ in range(3):
            assert await status(session, "GET", f"{two}/dev/a", "exact") == 200
            assert await status(session, "GET", f"{one}/dev/a", "exact") == 200
        assert len(auth_log) == 1
        # The cached policy allows GET /a only: POST is denied on both nodes, still not invoked.
        assert await status(session, "POST", f"{two}/dev/a", "exact") == 403
        assert await status(session, "POST", f"{one}/dev/a", "exact") == 403
        assert len(auth_log) == 1


async def test_ttl_zero_is_not_cached_on_any_node(nodes: list[str], auth_log: InvocationLog) -> None:
    async with aiohttp.ClientSession() as session:
        for base in nodes * 2:
            assert await status(session, "GET", f"{base}/dev/off", "allow") == 200
    assert len(auth_log) == 4

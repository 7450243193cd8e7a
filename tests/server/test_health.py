"""``/@health`` (liveness) and ``/@ready`` (readiness): pure verdicts, a real gateway on the
embedded store and on a real redis-server that the test stops, and ``--drain-delay`` on SIGTERM
of a real ``portway serve`` process."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from server.app import create_app
from server.config.load import load_config
from server.config.model import GatewayConfig
from server.health import PingCache, readiness, store_needed
from server.http_server import GatewayRunner
from tests.cluster.conftest import TIMINGS, config_yaml
from tests.redis_fixture import RedisServer
from tests.server.live import gateway_process

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello" / "portway.yaml"

REST_ONLY = """\
portway: 1
apis:
  - name: plain
    type: rest
    routes:
      GET /ping: {mock: {status: 200, body: pong}}
"""


def _config(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "portway.yaml"
    path.write_text(text)
    return load_config(path)


# -- pure ------------------------------------------------------------------------------------


def test_ready_only_when_loaded_not_draining_and_store_answers_if_needed() -> None:
    ok = dict(config_loaded=True, draining=False, store_reachable=True, store_needed=True)
    assert readiness(**ok) == (
        200,
        {"status": "ready", "checks": {"config": "loaded", "store": "ok", "draining": False}},
    )
    assert readiness(**{**ok, "draining": True})[0] == 503
    assert readiness(**{**ok, "config_loaded": False})[0] == 503
    status, body = readiness(**{**ok, "store_reachable": False})
    assert status == 503 and body["checks"] == {"config": "loaded", "store": "unreachable", "draining": False}
    # A store the config can do without: still ready, the body says the store is down.
    status, body = readiness(**{**ok, "store_reachable": False, "store_needed": False})
    assert status == 200 and body["checks"]["store"] == "unreachable"  # type: ignore[index]


def test_store_needed_by_websockets_and_closed_throttling(tmp_path: Path) -> None:
    assert not store_needed(_config(tmp_path, REST_ONLY))
    assert store_needed(
        _config(tmp_path, REST_ONLY.replace("portway: 1", "portway: 1\nthrottleFailure: closed"))
    )
    assert store_needed(_config(tmp_path, config_yaml(TIMINGS)))


def test_ping_cache_remembers_for_its_ttl() -> None:
    cache = PingCache(ttl_s=1.0)
    assert cache.fresh(10.0) is None
    cache.remember(False, 10.0)
    assert cache.fresh(10.5) is False
    assert cache.fresh(11.0) is None
    cache.remember(True, 11.0)
    assert cache.fresh(11.2) is True
    assert cache.fresh(5.0) is None  # a clock that went back: ping again


# -- a real gateway --------------------------------------------------------------------------


@asynccontextmanager
async def served(config: GatewayConfig, redis_url: str | None = None) -> AsyncIterator[str]:
    runner = GatewayRunner(create_app(config, redis_url=redis_url), access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def probe(base: str, path: str, method: str = "GET") -> tuple[int, dict[str, object], str]:
    async with aiohttp.ClientSession() as http, http.request(method, base + path) as resp:
        body = await resp.json() if method == "GET" else {}
        return resp.status, body, resp.headers.get("Cache-Control", "")


async def until_status(base: str, path: str, status: int, within: float = 10.0) -> dict[str, object]:
    deadline = time.monotonic() + within
    while True:
        got, body, _ = await probe(base, path)
        if got == status:
            return body
        assert time.monotonic() < deadline, f"{path} still {got} {body} after {within} s"
        await asyncio.sleep(0.05)


async def test_health_and_ready_on_the_embedded_store() -> None:
    async with served(load_config(HELLO)) as base:
        assert await probe(base, "/@health") == (200, {"status": "ok"}, "no-store")
        status, body, _ = await probe(base, "/@ready")
        assert status == 200
        assert body == {"status": "ready", "checks": {"config": "loaded", "store": "ok", "draining": False}}
        assert (await probe(base, "/@ready", "HEAD"))[0] == 200
        async with aiohttp.ClientSession() as http, http.post(base + "/@health") as resp:
            assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"
        # The API's own routes are untouched.
        assert (await probe(base, "/dev/health"))[:2] == (200, {"ok": True})


@pytest.mark.redis
async def test_ready_follows_redis_when_the_config_needs_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    ws_config = _config(tmp_path, config_yaml(TIMINGS))
    (tmp_path / "rest").mkdir()
    rest_config = _config(tmp_path / "rest", REST_ONLY)
    async with (
        served(ws_config, redis_server.url) as ws_base,
        served(rest_config, redis_server.url) as rest_base,
    ):
        await until_status(ws_base, "/@ready", 200)
        await until_status(rest_base, "/@ready", 200)
        redis_server.stop()
        body = await until_status(ws_base, "/@ready", 503)
        assert body == {
            "status": "not ready",
            "checks": {"config": "loaded", "store": "unreachable", "draining": False},
        }
        # Liveness does not depend on the store: the orchestrator must not restart the node.
        assert (await probe(ws_base, "/@health"))[0] == 200
        # A REST API throttling "open" serves through the outage: ready, store reported down.
        status, body, _ = await probe(rest_base, "/@ready")
        assert status == 200 and body["checks"]["store"] == "unreachable"  # type: ignore[index]
        redis_server.restart()
        await until_status(ws_base, "/@ready", 200)


async def test_ready_answers_503_during_the_drain_delay_then_the_process_exits() -> None:
    async with gateway_process(HELLO, "--drain-delay", "2", "--quiet") as served_proc:
        base = f"http://127.0.0.1:{served_proc.port}"
        assert (await probe(base, "/@ready"))[0] == 200
        stopped_at = time.monotonic()
        served_proc.proc.send_signal(signal.SIGTERM)
        body = await until_status(base, "/@ready", 503, within=5)
        assert body["checks"]["draining"] is True  # type: ignore[index]
        # Still serving meanwhile: liveness and the API's routes.
        assert (await probe(base, "/@health"))[0] == 200
        assert (await probe(base, "/dev/health"))[0] == 200
        async with asyncio.timeout(15):
            assert await served_proc.proc.wait() == 0
        assert time.monotonic() - stopped_at >= 2.0
        output = (await served_proc.output).decode()
        assert "draining" in output and "Traceback" not in output, output

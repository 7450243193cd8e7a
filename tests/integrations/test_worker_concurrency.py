"""Pre-started workers (``provisionedConcurrency``), cold-start figures, and ``reservedConcurrency``
as the pool's cap with Lambda's 429 ``TooManyRequestsException`` beyond it (issue 14)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from routes.integrations.base import ConcurrencyLimitExceeded
from routes.integrations.python_workers import WorkerPoolInvoker
from server.app import INVOKERS
from server.config.load import load_config
from tests.runtime.serve import serving

HANDLERS = Path(__file__).parent / "handlers"
PROJECT = Path(__file__).parent / "projects" / "concurrency"
Factory = Callable[..., WorkerPoolInvoker]


@pytest.fixture
async def pool() -> AsyncIterator[Factory]:
    made: list[WorkerPoolInvoker] = []

    def make(**kwargs: Any) -> WorkerPoolInvoker:
        invoker = WorkerPoolInvoker(
            handler="fx_batch.step",
            code_dir=HANDLERS,
            function_name="limited",
            region="eu-west-1",
            account_id="111122223333",
            **kwargs,
        )
        made.append(invoker)
        return invoker

    yield make
    processes = [proc for invoker in made for proc in invoker.processes]
    await asyncio.gather(*(invoker.close() for invoker in made))
    assert all(proc.returncode is not None for proc in processes)


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_reserved_concurrency_caps_the_pool_and_refuses_beyond(pool: Factory, tmp_path: Path) -> None:
    fn = pool(workers=4, reserved_concurrency=2)
    latch = {"do": "latch", "path": str(tmp_path / "go")}
    held = [asyncio.create_task(fn.invoke_event(latch, request_id=f"r{i}", timeout_s=10)) for i in range(2)]
    await wait_for(lambda: len(fn.processes) == 2 and fn.waiting == 0)
    with pytest.raises(ConcurrencyLimitExceeded, match="reserved concurrency 2"):
        await fn.invoke_event({}, request_id="over", timeout_s=10)
    (tmp_path / "go").touch()
    await asyncio.gather(*held)
    # The invocations ended: room again, and the pool never grew past the reservation.
    assert (await fn.invoke_event({}, request_id="again", timeout_s=10))["request_id"] == "again"
    assert fn.spawned == 2


async def test_queued_calls_count_against_the_reservation(pool: Factory, tmp_path: Path) -> None:
    fn = pool(workers=1, reserved_concurrency=2)
    latch = {"do": "latch", "path": str(tmp_path / "go")}
    running = asyncio.create_task(fn.invoke_event(latch, request_id="a", timeout_s=10))
    await wait_for(lambda: len(fn.processes) == 1 and fn.waiting == 0)
    queued = asyncio.create_task(fn.invoke_event({}, request_id="b", timeout_s=10))
    await wait_for(lambda: fn.waiting == 1)
    with pytest.raises(ConcurrencyLimitExceeded):
        await fn.invoke_event({}, request_id="c", timeout_s=10)
    (tmp_path / "go").touch()
    await asyncio.gather(running, queued)


async def test_reserved_concurrency_zero_refuses_every_call(pool: Factory) -> None:
    fn = pool(reserved_concurrency=0)
    with pytest.raises(ConcurrencyLimitExceeded):
        await fn.invoke_event({}, request_id="r", timeout_s=5)
    assert fn.spawned == 0


async def test_prestart_warms_workers_and_cold_starts_are_reported(
    pool: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="portway.function.limited")
    fn = pool(prestart=2)
    await fn.start(fn.prestart)
    assert len(fn.processes) == 2 and len(fn.cold_starts_ms) == 2
    assert all(0 < ms < 10_000 for ms in fn.cold_starts_ms)
    assert fn.first_invocation_ms is None
    await fn.invoke_event({}, request_id="r", timeout_s=5)
    assert fn.spawned == 2  # served by a pre-started worker
    assert fn.first_invocation_ms is not None and fn.first_invocation_ms < min(fn.cold_starts_ms) + 1000
    messages = [r.getMessage() for r in caplog.records if r.name == "portway.function.limited"]
    assert sum("cold start: worker" in m for m in messages) == 2
    assert any(m.startswith("first invocation:") for m in messages)


async def test_serverless_yml_provisioned_and_reserved_concurrency(tmp_path: Path) -> None:
    config = load_config(PROJECT / "serverless.yml", env={})
    async with serving(config) as client:
        pools = {p.name: p for p in client.app[INVOKERS].all() if isinstance(p, WorkerPoolInvoker)}
        capped, off, lazy = (
            pools["concurrency-dev-capped"],
            pools["concurrency-dev-off"],
            pools["concurrency-dev-lazy"],
        )
        assert isinstance(capped, WorkerPoolInvoker)
        # provisionedConcurrency: 1 -> one worker up before the first request; others start lazily.
        assert len(capped.processes) == 1 and capped.spawned == 1
        assert lazy.processes == [] and off.processes == []
        latch = tmp_path / "go"
        busy = asyncio.create_task(client.get("/capped", params={"latch": str(latch)}))
        await wait_for(lambda: capped.waiting == 0 and capped.idle == 0)
        for path in ("/capped", "/dev/capped", "/off"):  # HTTP API, REST, a function turned off
            over = await client.get(path)
            assert over.status == 429, path
            assert await over.json() == {"message": "Too Many Requests"}
        latch.touch()
        response = await busy
        assert response.status == 200
        assert (await client.get("/capped")).status == 200
        assert capped.spawned == 1  # reservedConcurrency 1 caps the pool at one worker


def test_native_config_takes_both_settings(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text((PROJECT / "handler.py").read_text())
    (tmp_path / "portway.yaml").write_text(
        "portway: 1\n"
        "apis:\n"
        "  - name: n\n"
        "    type: http\n"
        "    codeDir: .\n"
        "    defaults: {reservedConcurrency: 3}\n"
        "    routes:\n"
        "      GET /a: {python: handler.wait, provisionedConcurrency: 2}\n"
        "      GET /b: handler.wait\n"
    )
    config = load_config(tmp_path / "portway.yaml", env={})
    a, b = (route.integration for route in config.apis[0].routes)
    assert (a.prestart, a.reserved_concurrency) == (2, 3)
    assert (b.prestart, b.reserved_concurrency) == (0, 3)

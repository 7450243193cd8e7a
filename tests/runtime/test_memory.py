"""memorySize is enforced on worker processes (issue 11 item 11)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from routes.integrations._worker_main import MEMORY_HEADROOM_MB
from routes.integrations.base import InvokeFailure
from routes.integrations.python_workers import WorkerPoolInvoker
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    RouteConfig,
    StageConfig,
)
from tests.runtime.serve import serving

HANDLERS = Path(__file__).parent / "handlers"
MB = 1024 * 1024


@pytest.fixture
async def memory_fn() -> AsyncIterator[Callable[..., WorkerPoolInvoker]]:
    made: list[WorkerPoolInvoker] = []

    def make(memory_mb: int, handler: str = "rt_memory.grow") -> WorkerPoolInvoker:
        invoker = WorkerPoolInvoker(
            handler=handler,
            code_dir=HANDLERS,
            function_name="hungry",
            region="eu-west-1",
            account_id="111122223333",
            memory_mb=memory_mb,
        )
        made.append(invoker)
        return invoker

    yield make
    await asyncio.gather(*(invoker.close() for invoker in made))


async def test_the_limit_is_memory_size_plus_headroom(memory_fn: Callable[..., WorkerPoolInvoker]) -> None:
    result: dict[str, Any] = await memory_fn(128, "rt_memory.limit").invoke_event(
        {}, request_id="r", timeout_s=10.0
    )
    assert result["data"] == (128 + MEMORY_HEADROOM_MB) * MB


async def test_a_handler_beyond_its_memory_is_killed_and_replaced(
    memory_fn: Callable[..., WorkerPoolInvoker],
) -> None:
    fn = memory_fn(128)
    assert await fn.invoke_event({"mb": 64}, request_id="r0", timeout_s=10.0) == {"kept_mb": 64}
    (first,) = fn.processes
    started = time.monotonic()
    with pytest.raises(InvokeFailure) as failure:
        await fn.invoke_event({"mb": 1024}, request_id="r1", timeout_s=20.0)
    assert time.monotonic() - started < 10  # refused at the limit, not after growing to 1 GB
    assert str(failure.value) == (
        "Runtime.OutOfMemory: RequestId: r1 Error: Runtime exited with error: signal: killed"
    )
    assert fn.out_of_memory == 1
    deadline = time.monotonic() + 5
    while first.returncode is None:
        assert time.monotonic() < deadline, "the out-of-memory worker is still running"
        await asyncio.sleep(0.01)
    assert first.returncode == -9
    # A fresh sandbox: the module's leaked chunks are gone, so the same call fits again.
    assert await fn.invoke_event({"mb": 64}, request_id="r2", timeout_s=10.0) == {"kept_mb": 64}
    assert fn.spawned == 2


async def test_rest_client_gets_502_and_the_log_says_why(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="portway.integration")
    integration = IntegrationConfig(
        type=IntegrationType.PYTHON,
        handler="rt_memory.proxy",
        code_dir=HANDLERS,
        function_name="hungry",
        memory_mb=128,
    )
    api = ApiConfig(
        name="mem",
        id="memid",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"),),
        routes=(RouteConfig(method="GET", path="/eat", integration=integration),),
    )
    async with serving(GatewayConfig(apis=(api,))) as client:
        response = await client.get("/dev/eat", params={"mb": "2048"})
        assert response.status == 502
        assert await response.json() == {"message": "Internal server error"}
        assert response.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
        again = await client.get("/dev/eat", params={"mb": "8"})
        assert again.status == 200 and await again.text() == "8"
    assert any("Runtime.OutOfMemory" in record.getMessage() for record in caplog.records)

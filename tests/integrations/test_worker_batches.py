"""Worker pools write the calls queued behind a busy worker to it in one batch (issue 14): they
still run one at a time and in order, and a worker lost mid-batch loses only the call it ran."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from routes.integrations.base import InvokeFailure
from routes.integrations.python_workers import WorkerPoolInvoker

HANDLERS = Path(__file__).parent / "handlers"


@pytest.fixture
async def fn() -> AsyncIterator[WorkerPoolInvoker]:
    invoker = WorkerPoolInvoker(
        handler="fx_batch.step",
        code_dir=HANDLERS,
        function_name="batch-fn",
        region="eu-west-1",
        account_id="111122223333",
        workers=1,
    )
    await invoker.start()
    yield invoker
    processes = invoker.processes
    await invoker.close()
    assert all(proc.returncode is not None for proc in processes)


async def wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def call(
    fn: WorkerPoolInvoker, event: dict[str, Any], name: str, timeout_s: float = 10.0
) -> asyncio.Task[Any]:
    return asyncio.create_task(fn.invoke_event(event, request_id=name, timeout_s=timeout_s))


async def hold(fn: WorkerPoolInvoker, tmp_path: Path) -> tuple[asyncio.Task[Any], Path]:
    """Keep the only worker busy until the returned latch file exists."""
    latch = tmp_path / "go"
    busy = call(fn, {"do": "latch", "path": str(latch)}, "busy")
    await wait_for(lambda: fn.batches == 1)
    return busy, latch


async def test_queued_calls_go_in_one_batch_and_run_in_order(fn: WorkerPoolInvoker, tmp_path: Path) -> None:
    busy, latch = await hold(fn, tmp_path)
    queued = [call(fn, {}, f"r{i}") for i in range(10)]
    await wait_for(lambda: fn.waiting == 10)
    latch.touch()
    first = await busy
    results = await asyncio.gather(*queued)
    assert fn.batches == 2  # the busy call, then the ten queued behind it together
    assert [r["request_id"] for r in results] == [f"r{i}" for i in range(10)]
    assert [r["calls"] for r in results] == list(range(2, 12))  # one at a time, globals kept
    assert {r["pid"] for r in results} == {first["pid"]} and fn.spawned == 1


async def test_a_crash_mid_batch_fails_that_call_only(fn: WorkerPoolInvoker, tmp_path: Path) -> None:
    busy, latch = await hold(fn, tmp_path)
    before = call(fn, {}, "before")
    crash = call(fn, {"do": "crash"}, "crash")
    after = [call(fn, {}, f"after{i}") for i in range(3)]
    await wait_for(lambda: fn.waiting == 5)
    latch.touch()
    assert (await busy)["calls"] == 1
    assert (await before)["calls"] == 2
    with pytest.raises(InvokeFailure, match="Runtime.ExitError"):
        await crash
    # The calls behind it had not started: a fresh worker (new globals) runs them.
    results = await asyncio.gather(*after)
    assert [r["calls"] for r in results] == [1, 2, 3]
    assert fn.spawned == 2


async def test_a_timeout_mid_batch_requeues_the_calls_behind_it(
    fn: WorkerPoolInvoker, tmp_path: Path
) -> None:
    busy, latch = await hold(fn, tmp_path)
    hung = call(fn, {"do": "hang"}, "hung", timeout_s=0.5)
    after = [call(fn, {}, f"after{i}") for i in range(3)]
    await wait_for(lambda: fn.waiting == 4)
    latch.touch()
    await busy
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await hung
    assert time.monotonic() - started < 2
    results = await asyncio.gather(*after)
    assert [r["calls"] for r in results] == [1, 2, 3]
    assert fn.timeouts == 1 and fn.spawned == 2


async def test_a_caller_gone_behind_the_running_call_costs_nothing(
    fn: WorkerPoolInvoker, tmp_path: Path
) -> None:
    busy, latch = await hold(fn, tmp_path)
    running = call(fn, {"do": "latch", "path": str(tmp_path / "second")}, "running")
    await wait_for(lambda: fn.batches == 1 and fn.waiting == 1)
    latch.touch()
    await busy
    await wait_for(lambda: fn.batches == 2)
    behind = call(fn, {}, "behind")  # queued while "running" runs
    last = call(fn, {}, "last")
    await wait_for(lambda: fn.waiting == 2)
    behind.cancel()
    (tmp_path / "second").touch()
    assert (await running)["calls"] == 2
    assert (await last)["calls"] == 3  # "behind" left the queue without running
    assert fn.spawned == 1 and fn.timeouts == 0


async def test_a_worker_start_failing_unexpectedly_fails_the_waiting_calls_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from routes.integrations.python_worker_process import WorkerProcess

    attempts: list[int] = []

    async def broken(cls: type[WorkerProcess], *args: Any) -> WorkerProcess:
        attempts.append(1)
        raise ValueError("unexpected")

    monkeypatch.setattr(WorkerProcess, "launch", classmethod(broken))
    fn = WorkerPoolInvoker(
        handler="fx_batch.step", code_dir=HANDLERS, function_name="f", region="eu-west-1", account_id="1"
    )
    calls = [asyncio.create_task(fn.invoke_event({}, request_id=str(i), timeout_s=5)) for i in range(3)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, InvokeFailure) and "cannot start a worker" in str(r) for r in results)
    assert len(attempts) == 1  # one failed start for the three waiting calls, no retry loop
    with pytest.raises(InvokeFailure):  # the next call tries again
        await fn.invoke_event({}, request_id="again", timeout_s=5)
    assert len(attempts) == 2
    await fn.close()

"""WorkerPoolInvoker: Python handlers in long-lived worker processes."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from routes.integrations.base import FunctionError, InvokeFailure
from routes.integrations.python_workers import WorkerPoolInvoker

HANDLERS = Path(__file__).parent / "handlers"
Factory = Callable[..., WorkerPoolInvoker]


@pytest.fixture
async def pool() -> AsyncIterator[Factory]:
    """Builds invokers; on teardown closes them and checks that no child process is left."""
    made: list[WorkerPoolInvoker] = []

    def make(handler: str, **kwargs: Any) -> WorkerPoolInvoker:
        invoker = WorkerPoolInvoker(
            handler=handler if "." in handler else f"fx_basic.{handler}",
            code_dir=HANDLERS,
            function_name=kwargs.pop("function_name", "worker-fn"),
            region="eu-west-1",
            account_id="111122223333",
            memory_mb=kwargs.pop("memory_mb", 512),
            **kwargs,
        )
        made.append(invoker)
        return invoker

    yield make
    processes = [proc for invoker in made for proc in invoker.processes]
    await asyncio.gather(*(invoker.close() for invoker in made))
    assert all(proc.returncode is not None for proc in processes)
    for proc in processes:  # reaped, not zombies: the pid is gone
        with pytest.raises(ProcessLookupError):
            os.kill(proc.pid, 0)


async def wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("handler", ["echo", "async_echo"])
async def test_event_and_context(pool: Factory, handler: str) -> None:
    event = {"path": "/pets", "body": None, "headers": {"A": "1"}, "n": [1, 2.5, True], "u": "é"}
    result = await pool(handler).invoke_event(event, request_id="req-1", timeout_s=5.0)
    assert result["event"] == event
    assert result["pid"] != os.getpid()
    context = result["context"]
    assert 3000 < context.pop("remaining_ms") <= 5000
    assert "[$LATEST]" in context.pop("log_stream_name")
    assert context == {
        "aws_request_id": "req-1",
        "function_name": "worker-fn",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:worker-fn",
        "memory_limit_in_mb": "512",
        "log_group_name": "/aws/lambda/worker-fn",
        "identity": [None, None],
        "client_context": None,
    }


async def test_globals_persist_within_a_worker(pool: Factory) -> None:
    fn = pool("count")
    results = [await fn.invoke_event({}, request_id=str(i), timeout_s=5.0) for i in range(3)]
    assert [r["calls"] for r in results] == [1, 2, 3]
    assert len({r["pid"] for r in results}) == 1


async def test_exception_is_function_error(pool: Factory) -> None:
    fn = pool("boom")
    with pytest.raises(FunctionError) as caught:
        await fn.invoke_event({"x": 7}, request_id="r", timeout_s=5.0)
    assert (caught.value.error_type, caught.value.error_message) == ("ValueError", "bad input: 7")
    assert "fx_basic.py" in caught.value.stack_trace[0]
    assert all("_worker_main" not in line for line in caught.value.stack_trace)
    with pytest.raises(FunctionError, match="KeyError"):
        await pool("async_boom").invoke_event({}, request_id="r", timeout_s=5.0)


async def test_timeout_kills_and_replaces_the_worker(pool: Factory) -> None:
    fn = pool("sleep")
    await fn.start()
    (first,) = fn.processes
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await fn.invoke_event({"seconds": 30}, request_id="r", timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert fn.timeouts == 1
    await wait_for(lambda: first.returncode is not None)
    assert first.returncode == -9
    assert await fn.invoke_event({"seconds": 0}, request_id="r", timeout_s=5.0) == "late"
    (second,) = fn.processes
    assert second.pid != first.pid and fn.spawned == 2


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        ("crash", "Runtime exited with error: exit status 1"),
        ("exits", "Runtime exited with error: exit status 3"),
        ("segfault", "Runtime exited with error: signal: segmentation fault"),
    ],
)
async def test_crash_is_invoke_failure_then_recovers(pool: Factory, handler: str, reason: str) -> None:
    fn = pool(handler)
    with pytest.raises(InvokeFailure, match=f"Runtime.ExitError: {reason}"):
        await fn.invoke_event({}, request_id="r", timeout_s=5.0)
    # The slot starts a fresh worker: the same crash again, not a hang or a dead pool.
    with pytest.raises(InvokeFailure, match="Runtime.ExitError"):
        await fn.invoke_event({}, request_id="r", timeout_s=5.0)
    assert fn.spawned == 2


async def test_prints_are_logged_not_mixed_into_the_protocol(
    pool: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portway.function.noisy")
    fn = pool("noisy", function_name="noisy")
    for _ in range(3):
        assert await fn.invoke_event({}, request_id="r", timeout_s=5.0) == {"quiet": True}

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "portway.function.noisy"]

    await wait_for(lambda: logged().count("hello from the handler") == 3)
    assert any("junk that looks like a frame" in line for line in logged())


async def test_each_function_has_its_own_environment(pool: Factory) -> None:
    names = {"names": ["GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "LAMBDA_TASK_ROOT", "_HANDLER"]}
    one = pool("env", function_name="one", environment={"GREETING": "hello"})
    two = pool("env", function_name="two", environment={"GREETING": "bonjour", "AWS_REGION": "nope"})
    first, second = await asyncio.gather(
        one.invoke_event(names, request_id="a", timeout_s=5.0),
        two.invoke_event(names, request_id="b", timeout_s=5.0),
    )
    assert first == {
        "GREETING": "hello",
        "AWS_LAMBDA_FUNCTION_NAME": "one",
        "AWS_REGION": "eu-west-1",
        "LAMBDA_TASK_ROOT": str(HANDLERS.resolve()),
        "_HANDLER": "fx_basic.env",
    }
    assert (second["GREETING"], second["AWS_REGION"]) == ("bonjour", "eu-west-1")  # reserved names win
    assert "GREETING" not in os.environ


async def test_import_errors_are_invoke_failures(pool: Factory) -> None:
    broken = pool("fx_broken.handler")
    with pytest.raises(InvokeFailure, match="Runtime.ImportModuleError: Unable to import module 'fx_broken'"):
        await broken.invoke_event({}, request_id="r", timeout_s=5.0)
    with pytest.raises(InvokeFailure, match="Runtime.ImportModuleError"):
        await broken.start()
    with pytest.raises(InvokeFailure, match="RuntimeError: config missing"):
        await pool("fx_init_raises.handler").invoke_event({}, request_id="r", timeout_s=5.0)
    with pytest.raises(InvokeFailure, match="Runtime.HandlerNotFound"):
        await pool("fx_basic.nope").invoke_event({}, request_id="r", timeout_s=5.0)
    assert broken.processes == []


async def test_bounded_queue_rejects_when_full(pool: Factory, tmp_path: Path) -> None:
    fn = pool("block_until", workers=1, max_queue=1)
    latch = {"path": str(tmp_path / "go")}
    busy = asyncio.create_task(fn.invoke_event(latch, request_id="a", timeout_s=10.0))
    await wait_for(lambda: len(fn.processes) == 1 and fn.idle == 0)
    queued = asyncio.create_task(fn.invoke_event(latch, request_id="b", timeout_s=10.0))
    await wait_for(lambda: fn.waiting == 1)
    with pytest.raises(InvokeFailure, match="queue full"):
        await fn.invoke_event(latch, request_id="c", timeout_s=10.0)
    (tmp_path / "go").touch()
    first, second = await asyncio.gather(busy, queued)
    assert first["pid"] == second["pid"]  # one worker, one invocation at a time


async def test_results_follow_lambda_encoding(pool: Factory) -> None:
    assert await pool("money").invoke_event({}, request_id="r", timeout_s=5.0) == {"price": 19.99}
    with pytest.raises(InvokeFailure, match="Runtime.MarshalError"):
        await pool("not_json").invoke_event({}, request_id="r", timeout_s=5.0)
    fn = pool("big")
    payload = "é" * 300_000  # larger than a pipe buffer both ways
    result = await fn.invoke_event({"size": 1_000_000, "payload": payload}, request_id="r", timeout_s=5.0)
    assert (len(result["data"]), result["echo"]) == (1_000_000, payload)
    with pytest.raises(InvokeFailure, match="Function.ResponseSizeTooLarge"):
        await fn.invoke_event({"size": 7 * 1024 * 1024}, request_id="r", timeout_s=5.0)
    assert fn.spawned == 1  # size errors do not cost the worker


async def test_close_stops_busy_and_idle_workers(pool: Factory, tmp_path: Path) -> None:
    fn = pool("block_until", workers=2)
    await fn.start()
    processes = fn.processes
    assert len(processes) == 2
    busy = asyncio.create_task(
        fn.invoke_event({"path": str(tmp_path / "never")}, request_id="r", timeout_s=10)
    )
    await wait_for(lambda: fn.idle == 1)
    await fn.close()
    assert all(proc.returncode is not None for proc in processes)
    with pytest.raises(InvokeFailure):
        await busy
    with pytest.raises(InvokeFailure, match="closed"):
        await fn.invoke_event({}, request_id="r", timeout_s=1.0)


async def test_cancelled_call_discards_its_worker(pool: Factory) -> None:
    fn = pool("sleep")
    call = asyncio.create_task(fn.invoke_event({"seconds": 30}, request_id="r", timeout_s=10))
    await wait_for(lambda: len(fn.processes) == 1 and fn.idle == 0)
    (proc,) = fn.processes
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await wait_for(lambda: proc.returncode is not None)
    assert await fn.invoke_event({"seconds": 0}, request_id="r", timeout_s=5.0) == "late"


async def test_waiters_are_served_in_order_and_a_cancelled_waiter_loses_no_slot(
    pool: Factory, tmp_path: Path
) -> None:
    fn = pool("block_until", workers=1)
    await fn.start()  # warm, so "a" is written alone; the calls after it queue behind it
    latch = {"path": str(tmp_path / "go")}
    finished: list[str] = []

    def call(name: str, timeout_s: float = 10.0) -> asyncio.Task[Any]:
        task = asyncio.create_task(fn.invoke_event(latch, request_id=name, timeout_s=timeout_s))
        task.add_done_callback(lambda _: finished.append(name))
        return task

    busy = call("a")
    await wait_for(lambda: fn.idle == 0)
    cancelled, late, second, third = call("b"), call("c", timeout_s=0.3), call("d"), call("e")
    await wait_for(lambda: fn.waiting == 4)
    cancelled.cancel()
    with pytest.raises(TimeoutError):  # timed out in the queue: nobody's worker is killed
        await late
    assert fn.waiting == 2 and fn.spawned == 1
    (tmp_path / "go").touch()
    await asyncio.gather(busy, second, third)
    assert finished == ["b", "c", "a", "d", "e"]
    assert fn.spawned == 1 and fn.timeouts == 1

"""InProcessInvoker: Python handlers run inside the gateway process."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from routes.integrations.base import FunctionError, InvokeFailure
from routes.integrations.python_inprocess import InProcessInvoker

HANDLERS = Path(__file__).parent / "handlers"


def invoker(handler: str, **kwargs: Any) -> InProcessInvoker:
    return InProcessInvoker(
        handler=f"fx_basic.{handler}" if "." not in handler else handler,
        code_dir=HANDLERS,
        function_name=kwargs.pop("function_name", "inproc-fn"),
        region="eu-west-1",
        account_id="111122223333",
        memory_mb=kwargs.pop("memory_mb", 256),
        **kwargs,
    )


async def wait_for(predicate: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("handler", ["echo", "async_echo"])
async def test_event_and_context(handler: str) -> None:
    event = {"path": "/pets", "body": None, "headers": {"A": "1"}, "n": [1, 2.5, True]}
    result = await invoker(handler).invoke_event(event, request_id="req-1", timeout_s=3.0)
    assert result["event"] == event
    context = result["context"]
    remaining = context.pop("remaining_ms")
    assert 2000 < remaining <= 3000
    assert context.pop("log_stream_name").startswith(tuple("0123456789"))
    assert context == {
        "aws_request_id": "req-1",
        "function_name": "inproc-fn",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:inproc-fn",
        "memory_limit_in_mb": "256",
        "log_group_name": "/aws/lambda/inproc-fn",
        "identity": [None, None],
        "client_context": None,
    }
    assert result.get("async", False) is (handler == "async_echo")


async def test_the_event_is_handed_over_not_copied() -> None:
    """Contract: callers pass a fresh JSON-native event and do not reuse it (no per-call copy)."""
    event = {"a": {"b": 1}}
    result = await invoker("mutate").invoke_event(event, request_id="r", timeout_s=1.0)
    assert result == {"a": {"b": 1}, "added": True}
    assert event == {"a": {"b": 1}, "added": True}  # the handler had the caller's object


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("boom", "ValueError", "bad input: 7"),
        ("async_boom", "KeyError", "'missing'"),
        ("exits", "SystemExit", "3"),
    ],
)
async def test_exception_is_function_error(handler: str, error_type: str, message: str) -> None:
    with pytest.raises(FunctionError) as caught:
        await invoker(handler).invoke_event({"x": 7}, request_id="r", timeout_s=1.0)
    assert (caught.value.error_type, caught.value.error_message) == (error_type, message)
    assert "fx_basic.py" in caught.value.stack_trace[0]  # runtime frames are stripped
    assert all("python_inprocess.py" not in line for line in caught.value.stack_trace)


async def test_async_timeout_cancels_the_handler() -> None:
    fn = invoker("async_sleep")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await fn.invoke_event({"seconds": 30}, request_id="r", timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert (fn.timeouts, fn.stuck_threads) == (1, 0)


async def test_sync_timeout_leaves_a_counted_thread_and_does_not_block_the_loop() -> None:
    import fx_basic  # type: ignore[import-not-found]  # loaded by the invoker from HANDLERS

    fn = invoker("block_on_event")
    fx_basic.RELEASE.clear()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        with pytest.raises(TimeoutError):
            await fn.invoke_event({}, request_id="r", timeout_s=0.3)
    finally:
        ticker.cancel()
    assert ticks >= 10  # the loop kept running while the handler blocked its thread
    assert (fn.timeouts, fn.stuck_threads) == (1, 1)
    fx_basic.RELEASE.set()
    await wait_for(lambda: fn.stuck_threads == 0)


async def test_concurrent_sync_handlers_run_in_parallel_threads() -> None:
    fn = invoker("sleep")
    started = time.monotonic()
    results = await asyncio.gather(
        *(fn.invoke_event({"seconds": 0.2}, request_id="r", timeout_s=5) for _ in range(4))
    )
    assert results == ["late"] * 4
    assert time.monotonic() - started < 0.7


async def test_result_is_json_round_tripped() -> None:
    assert await invoker("money").invoke_event({}, request_id="r", timeout_s=1.0) == {"price": 19.99}
    with pytest.raises(InvokeFailure, match="Runtime.MarshalError: Unable to marshal response"):
        await invoker("not_json").invoke_event({}, request_id="r", timeout_s=1.0)


async def test_response_size_limit() -> None:
    with pytest.raises(InvokeFailure, match="Function.ResponseSizeTooLarge"):
        await invoker("big").invoke_event({"size": 7 * 1024 * 1024}, request_id="r", timeout_s=5.0)


async def test_import_errors_are_invoke_failures() -> None:
    with pytest.raises(InvokeFailure, match="Runtime.ImportModuleError: Unable to import module 'fx_broken'"):
        await invoker("fx_broken.handler").invoke_event({}, request_id="r", timeout_s=1.0)
    with pytest.raises(InvokeFailure, match="RuntimeError: config missing"):
        await invoker("fx_init_raises.handler").invoke_event({}, request_id="r", timeout_s=1.0)
    with pytest.raises(
        InvokeFailure, match="Runtime.HandlerNotFound: Handler 'nope' missing on module 'fx_basic'"
    ):
        await invoker("fx_basic.nope").invoke_event({}, request_id="r", timeout_s=1.0)
    assert "fx_broken" not in sys.modules


async def test_module_name_clash_with_an_already_loaded_module() -> None:
    with pytest.raises(InvokeFailure, match="module 'json' is already loaded"):
        await invoker("json.dumps").invoke_event({}, request_id="r", timeout_s=1.0)


async def test_closed_invoker_refuses_calls() -> None:
    fn = invoker("echo")
    await fn.close()
    with pytest.raises(InvokeFailure, match="closed"):
        await fn.invoke_event({}, request_id="r", timeout_s=1.0)

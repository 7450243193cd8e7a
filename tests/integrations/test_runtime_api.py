"""RuntimeApiInvoker: functions of other runtimes served through the Lambda Runtime API.

Real runtimes each time: a ``bootstrap`` custom runtime (Python standard library), AWS's Python
runtime interface client (``awslambdaric``) and Portway's Node shim on the installed ``node``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from routes.integrations.base import FunctionError, InvokeFailure
from routes.integrations.runtime_api import RuntimeApiInvoker, RuntimeUnavailable, runtime_command

RUNTIMES = Path(__file__).parent / "runtimes"
Factory = Callable[..., RuntimeApiInvoker]


@pytest.fixture
async def make() -> AsyncIterator[Factory]:
    """Builds invokers; on teardown closes them and checks that no child process is left."""
    made: list[RuntimeApiInvoker] = []

    def build(
        folder: str, handler: str = "app.handler", runtime: str = "provided.al2023", **kw: Any
    ) -> RuntimeApiInvoker:
        invoker = RuntimeApiInvoker(
            runtime=runtime,
            handler=handler,
            code_dir=RUNTIMES / folder,
            function_name=kw.pop("function_name", "rt-fn"),
            region="eu-west-1",
            account_id="111122223333",
            **kw,
        )
        made.append(invoker)
        return invoker

    yield build
    processes = [proc for invoker in made for proc in invoker.processes]
    await asyncio.gather(*(invoker.close() for invoker in made))
    assert all(proc.returncode is not None for proc in processes)


async def logged(caplog: pytest.LogCaptureFixture, *parts: str, within: float = 5.0) -> None:
    """Wait for a function output line holding every part (output is read asynchronously)."""
    deadline = time.monotonic() + within
    while not any(all(part in rec.getMessage() for part in parts) for rec in caplog.records):
        assert time.monotonic() < deadline, f"no output line with {parts}"
        await asyncio.sleep(0.01)


async def test_custom_bootstrap_gets_event_and_runtime_headers(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTWAY_SECRET", "gateway-only")  # never reaches a function
    invoker = make("custom", environment={"X": "1"})
    result = await invoker.invoke_event({"path": "/a", "u": "é"}, request_id="req-1", timeout_s=5.0)
    assert result["event"] == {"path": "/a", "u": "é"}
    headers = {key.lower(): value for key, value in result["headers"].items()}
    assert headers["lambda-runtime-aws-request-id"] == "req-1"
    assert (
        headers["lambda-runtime-invoked-function-arn"]
        == "arn:aws:lambda:eu-west-1:111122223333:function:rt-fn"
    )
    assert headers["lambda-runtime-trace-id"].startswith("Root=1-")
    assert int(headers["lambda-runtime-deadline-ms"]) > 0
    assert result["handler"] == "app.handler"
    assert result["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "rt-fn"
    assert result["env"]["LAMBDA_TASK_ROOT"] == str(RUNTIMES / "custom")
    assert result["env"]["PORTWAY_SECRET"] is None
    # warm: the same worker serves the next call
    await invoker.invoke_event({}, request_id="req-2", timeout_s=5.0)
    assert invoker.spawned == 1


async def test_custom_bootstrap_error_is_a_function_error(make: Factory) -> None:
    invoker = make("custom")
    with pytest.raises(FunctionError) as caught:
        await invoker.invoke_event({"fail": "bad input"}, request_id="r", timeout_s=5.0)
    assert (caught.value.error_type, caught.value.error_message) == ("ValueError", "bad input")
    assert caught.value.stack_trace == ["bootstrap line 1"]
    assert (await invoker.invoke_event({}, request_id="r2", timeout_s=5.0))["event"] == {}


async def test_second_answer_for_one_invocation_is_refused(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portway.function.rt-fn")
    invoker = make("custom")
    await invoker.invoke_event({"double": True}, request_id="r", timeout_s=5.0)
    await invoker.invoke_event({}, request_id="r2", timeout_s=5.0)  # the worker got past its refusal
    await logged(caplog, "second answer 400", "InvalidRequestID")
    await logged(caplog, "posted 202 {'status': 'OK'}")


async def test_timeout_kills_and_replaces_the_worker(make: Factory) -> None:
    invoker = make("custom")
    await invoker.invoke_event({}, request_id="warm", timeout_s=5.0)
    first = invoker.processes[0]
    with pytest.raises(TimeoutError):
        await invoker.invoke_event({"sleep": 30}, request_id="slow", timeout_s=0.5)
    assert invoker.timeouts == 1
    await asyncio.wait_for(first.wait(), 5.0)
    assert (await invoker.invoke_event({"n": 1}, request_id="after", timeout_s=5.0))["event"] == {"n": 1}
    assert invoker.spawned == 2


async def test_crash_is_an_exit_error_and_the_worker_is_replaced(make: Factory) -> None:
    invoker = make("custom")
    with pytest.raises(InvokeFailure, match=r"Runtime.ExitError: Runtime exited with error: exit status 3"):
        await invoker.invoke_event({"crash": True}, request_id="r", timeout_s=5.0)
    assert (await invoker.invoke_event({}, request_id="r2", timeout_s=5.0))["event"] == {}


async def test_init_error_fails_the_call(make: Factory) -> None:
    invoker = make("badinit")
    with pytest.raises(InvokeFailure, match=r"Runtime.ConfigError: missing DB_URL"):
        await invoker.invoke_event({}, request_id="r", timeout_s=5.0)


def test_missing_bootstrap_or_interpreter_is_a_load_time_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RuntimeUnavailable, match="no bootstrap"):
        runtime_command("provided.al2", tmp_path)
    (tmp_path / "bootstrap").write_text("#!/bin/sh\n")
    with pytest.raises(RuntimeUnavailable, match="not executable"):
        runtime_command("provided.al2", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeUnavailable, match="Node.js is not installed"):
        runtime_command("nodejs20.x", tmp_path)


async def test_awslambdaric_serves_a_python_handler(make: Factory) -> None:
    invoker = make("ric", environment={"RIC_PYTHON": sys.executable})
    result = await invoker.invoke_event({"q": [1, 2]}, request_id="ric-1", timeout_s=5.0)
    assert result == {
        "event": {"q": [1, 2]},
        "request_id": "ric-1",
        "arn": "arn:aws:lambda:eu-west-1:111122223333:function:rt-fn",
        "remaining_ok": True,
        "name": "rt-fn",
    }
    with pytest.raises(FunctionError) as caught:
        await invoker.invoke_event({"fail": "nope"}, request_id="ric-2", timeout_s=5.0)
    assert caught.value.error_type == "KeyError"
    assert (await invoker.invoke_event({}, request_id="ric-3", timeout_s=5.0))["request_id"] == "ric-3"
    assert invoker.spawned == 1


@pytest.mark.parametrize("handler", ["index.asyncHandler", "index.callbackHandler"])
async def test_node_shim_async_and_callback_handlers(make: Factory, handler: str) -> None:
    invoker = make("node", handler=handler, runtime="nodejs20.x")
    result = await invoker.invoke_event({"k": "v"}, request_id="n-1", timeout_s=5.0)
    assert result["event"] == {"k": "v"}
    with pytest.raises(FunctionError) as caught:
        await invoker.invoke_event({"fail": "boom"}, request_id="n-2", timeout_s=5.0)
    assert caught.value.error_message == "boom"
    assert caught.value.error_type == ("TypeError" if handler == "index.asyncHandler" else "Error")
    assert any("index.js" in line for line in caught.value.stack_trace)  # the shim's "trace"


async def test_node_shim_keeps_globals_and_reports_context(make: Factory) -> None:
    invoker = make("node", handler="index.asyncHandler", runtime="nodejs20.x")
    first = await invoker.invoke_event({}, request_id="a", timeout_s=5.0)
    second = await invoker.invoke_event({}, request_id="b", timeout_s=5.0)
    assert (first["calls"], second["calls"]) == (1, 2)
    assert second["requestId"] == "b" and second["remainingOk"] is True
    assert second["arn"].endswith(":function:rt-fn")


async def test_node_shim_timeout_and_init_errors(make: Factory) -> None:
    invoker = make("node", handler="index.sleepy", runtime="nodejs20.x")
    with pytest.raises(TimeoutError):
        await invoker.invoke_event({"ms": 30000}, request_id="s", timeout_s=0.5)
    assert await invoker.invoke_event({"ms": 1}, request_id="s2", timeout_s=5.0) == "late"
    missing = make("node", handler="index.nothere", runtime="nodejs20.x")
    with pytest.raises(InvokeFailure, match="Runtime.HandlerNotFound"):
        await missing.invoke_event({}, request_id="m", timeout_s=5.0)
    broken = make("node", handler="broken.handler", runtime="nodejs20.x")
    with pytest.raises(InvokeFailure, match="Runtime.UserCodeSyntaxError"):
        await broken.invoke_event({}, request_id="b", timeout_s=5.0)


async def test_memory_size_limits_the_worker(make: Factory) -> None:
    invoker = make("node", handler="index.hog", runtime="nodejs20.x", memory_mb=128)
    with pytest.raises(InvokeFailure, match=r"Runtime.ExitError: Runtime exited with error: signal: "):
        await invoker.invoke_event({}, request_id="m", timeout_s=20.0)
    small = make("node", handler="index.asyncHandler", runtime="nodejs20.x", memory_mb=128)
    assert (await small.invoke_event({"a": 1}, request_id="s", timeout_s=5.0))["event"] == {"a": 1}


@pytest.mark.parametrize("size", [6 * 1024 * 1024, 8 * 1024 * 1024])
async def test_response_past_6_mb_is_refused(
    make: Factory, caplog: pytest.LogCaptureFixture, size: int
) -> None:
    caplog.set_level(logging.INFO, logger="portway.function.rt-fn")
    invoker = make("custom")
    with pytest.raises(
        InvokeFailure, match=r"Function.ResponseSizeTooLarge: Response payload size \(\d+ bytes\)"
    ):
        await invoker.invoke_event({"big": size}, request_id="big", timeout_s=10.0)
    await logged(caplog, "big answer 413", "RequestEntityTooLarge")
    assert (await invoker.invoke_event({}, request_id="after", timeout_s=5.0))["event"] == {}


async def test_awslambdaric_import_error_is_an_init_error(make: Factory) -> None:
    invoker = make("ric", handler="missing.handler", environment={"RIC_PYTHON": sys.executable})
    with pytest.raises(InvokeFailure, match=r"Runtime.ImportModuleError"):
        await invoker.invoke_event({}, request_id="r", timeout_s=10.0)


async def test_workers_serve_calls_concurrently_one_each(make: Factory) -> None:
    invoker = make("custom", workers=2)
    first, second = await asyncio.gather(
        invoker.invoke_event({"sleep": 0.3, "n": 1}, request_id="c1", timeout_s=10.0),
        invoker.invoke_event({"sleep": 0.3, "n": 2}, request_id="c2", timeout_s=10.0),
    )
    assert (first["event"]["n"], second["event"]["n"]) == (1, 2)
    assert invoker.spawned == 2 and len(invoker.processes) == 2
    third = await invoker.invoke_event({"n": 3}, request_id="c3", timeout_s=10.0)  # a warm one
    assert third["event"]["n"] == 3 and invoker.spawned == 2


async def test_node_unhandled_rejection_fails_the_call_and_replaces_the_worker(make: Factory) -> None:
    invoker = make("node", handler="index.rejectsLater", runtime="nodejs20.x")
    with pytest.raises(InvokeFailure, match=r"Runtime.UnhandledPromiseRejection: Error: stray"):
        await invoker.invoke_event({}, request_id="u", timeout_s=5.0)
    assert (await invoker.invoke_event({"ok": 1}, request_id="u2", timeout_s=5.0)) == "fine"
    assert invoker.spawned == 2

"""In-process handlers that hang (issue 11, item 9): one function's hung calls cannot starve the
others, and a gateway process with hung handler threads still exits within its drain timeout."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from routes.integrations.python_handler import HandlerInvokers
from server.config.model import IntegrationConfig, IntegrationType, Isolation
from tests.integrations.test_python_inprocess import HANDLERS, invoker, wait_for
from tests.server.live import gateway_process


async def test_hung_calls_of_one_function_do_not_starve_another() -> None:
    hung = invoker("block_on_event", function_name="hangs")
    healthy = invoker("echo", function_name="healthy")
    await hung.load()
    fx_basic = sys.modules["fx_basic"]  # the handler module the invoker imported
    fx_basic.RELEASE.clear()
    try:
        # 40 calls that never return in time: before, they held every thread of a shared pool.
        results = await asyncio.gather(
            *(hung.invoke_event({}, request_id=f"h{i}", timeout_s=0.3) for i in range(40)),
            return_exceptions=True,
        )
        assert all(isinstance(result, TimeoutError) for result in results)
        assert hung.stuck_threads >= 1
        started = time.monotonic()
        result = await healthy.invoke_event({"n": 1}, request_id="ok", timeout_s=2.0)
        assert result["event"] == {"n": 1}
        assert time.monotonic() - started < 1.0
    finally:
        fx_basic.RELEASE.set()
        await wait_for(lambda: hung.stuck_threads == 0)
        await hung.close()
        await healthy.close()


async def test_calls_beyond_a_functions_threads_queue_within_their_timeout() -> None:
    """A function's excess calls wait for one of its threads; a call whose timeout passes while
    queued never runs (it holds no thread), and the function serves again once threads free."""
    fn = invoker("block_on_event", function_name="queued", threads=2)
    await fn.load()
    fx_basic = sys.modules["fx_basic"]
    fx_basic.RELEASE.clear()
    try:
        results = await asyncio.gather(
            *(fn.invoke_event({}, request_id=f"q{i}", timeout_s=0.3) for i in range(6)),
            return_exceptions=True,
        )
        assert all(isinstance(result, TimeoutError) for result in results)
        assert fn.stuck_threads == 2  # only the two running calls hold threads
        assert fn.threads_running == 2  # the running calls, counted per function
    finally:
        fx_basic.RELEASE.set()
        await wait_for(lambda: fn.stuck_threads == 0)
    assert await fn.invoke_event({}, request_id="after", timeout_s=2.0) == "released"
    await fn.close()


HANG_PY = """\
import pathlib, threading

def handler(event, context):
    pathlib.Path(__file__).with_name("started-" + context.aws_request_id).write_text("")
    threading.Event().wait()  # never returns
"""

CONFIG = """\
portway: 1
apis:
  - name: api
    type: rest
    codeDir: ./handlers
    defaults: {isolation: inprocess, timeout: 29000}
    routes:
      GET /hang: hang.handler
"""


@pytest.mark.slow
async def test_sigterm_exits_within_the_drain_timeout_with_hung_handlers(tmp_path: Path) -> None:
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "hang.py").write_text(HANG_PY)
    config = tmp_path / "portway.yaml"
    config.write_text(CONFIG)
    drain = 1.0
    async with (
        gateway_process(config, "--drain-timeout", str(drain)) as gateway,
        aiohttp.ClientSession() as http,
    ):
        url = f"http://127.0.0.1:{gateway.port}/dev/hang"
        calls = [asyncio.create_task(http.get(url)) for _ in range(8)]
        await wait_for(lambda: len(list(handlers.glob("started-*"))) >= 6, within=10)
        started = time.monotonic()
        gateway.proc.terminate()
        async with asyncio.timeout(drain + 10):
            code = await gateway.proc.wait()
        elapsed = time.monotonic() - started
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        output = (await gateway.output).decode()
    print(f"exit after SIGTERM with hung handlers: {elapsed:.2f} s (drain {drain} s)")
    assert code == 0
    assert elapsed < drain + 5.0, output
    assert "handler thread(s) still running" in output
    assert "Traceback" not in output, output


def _sync_function(handler: str, name: str) -> IntegrationConfig:
    return IntegrationConfig(
        type=IntegrationType.PYTHON,
        handler=f"fx_basic.{handler}",
        code_dir=HANDLERS,
        function_name=name,
        isolation=Isolation.INPROCESS,
        timeout_ms=5000,
    )


async def test_each_app_counts_and_drops_only_its_own_handler_threads() -> None:
    """Two gateways in one process (supervisor-less embedding, reloads, tests): the handler
    threads and queues are each app's (HandlerInvokers), not a process-wide registry, so one
    app's shutdown leaves the other's functions serving."""
    first = HandlerInvokers(region="eu-west-1", account_id="111122223333")
    second = HandlerInvokers(region="eu-west-1", account_id="111122223333")
    blocked = first.get(_sync_function("block_on_event", "first-blocked"))
    other = second.get(_sync_function("echo", "second-echo"))
    fx_basic_released = False
    await blocked.load()
    fx_basic = sys.modules["fx_basic"]
    fx_basic.RELEASE.clear()
    try:
        call = asyncio.create_task(blocked.invoke_event({}, request_id="b1", timeout_s=5.0))
        await wait_for(lambda: first.threads_alive() == 1)
        assert second.threads_alive() == 0
        first.drop_queued()  # what the CLI does after its drain
        assert await other.invoke_event({"k": 1}, request_id="e1", timeout_s=2.0) is not None
        fx_basic.RELEASE.set()
        fx_basic_released = True
        assert await call == "released"
        await wait_for(lambda: first.threads_alive() == 0)
    finally:
        if not fx_basic_released:
            fx_basic.RELEASE.set()
        await first.close_all()
        await second.close_all()

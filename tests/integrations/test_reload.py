"""``serve --reload``: a function's workers restart when its code changes (server/reload.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from routes.integrations.python_workers import WorkerPoolInvoker
from server.reload import changed_files, owners, watch

HANDLER = """
import itertools
_calls = itertools.count(1)  # a global: a fresh worker starts again at 1

def handler(event, context):
    return {{"version": "{version}", "call": next(_calls)}}
"""


def write_handler(root: Path, version: str) -> None:
    (root / "app.py").write_text(HANDLER.format(version=version))


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[WorkerPoolInvoker]:
    write_handler(tmp_path, "v1")
    invoker = WorkerPoolInvoker(
        handler="app.handler",
        code_dir=tmp_path,
        function_name="reload-fn",
        region="eu-west-1",
        account_id="111122223333",
        workers=2,
    )
    yield invoker
    await invoker.close()


@pytest.fixture
async def watching(pool: WorkerPoolInvoker, tmp_path: Path) -> AsyncIterator[None]:
    config = tmp_path / "portway.yaml"
    config.write_text("apis: []\n")
    task = asyncio.create_task(watch(lambda: [pool], config, interval_s=0.05))
    await asyncio.sleep(0.2)  # the first scan (the baseline) is done
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def call(pool: WorkerPoolInvoker) -> dict[str, object]:
    result = await pool.invoke_event({}, request_id="r", timeout_s=10.0)
    assert isinstance(result, dict)
    return result


async def poll(check: Callable[[], object], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_changed_files_and_owners() -> None:
    before = {"/a/x.py": (1, 10), "/a/y.py": (1, 10), "/b/z.py": (1, 1)}
    after = {"/a/x.py": (2, 10), "/b/z.py": (1, 1), "/a/n.py": (1, 1)}
    assert changed_files(before, after) == {"/a/x.py", "/a/y.py", "/a/n.py"}
    assert owners({"/a/x.py"}, ["/a", "/ab", "/b"]) == {"/a"}


async def test_code_change_is_picked_up(pool: WorkerPoolInvoker, tmp_path: Path, watching: None) -> None:
    first = await call(pool)
    assert first == {"version": "v1", "call": 1}
    assert (await call(pool))["version"] == "v1"
    saved = time.monotonic()
    write_handler(tmp_path, "v2-new")
    served: dict[str, object] = {}

    async def new_code() -> bool:
        served.update(await call(pool))
        return served["version"] == "v2-new"

    deadline = time.monotonic() + 15.0
    while not await new_code():
        assert time.monotonic() < deadline, "the new code was never served"
        await asyncio.sleep(0.02)
    delay_ms = (time.monotonic() - saved) * 1000
    logging.getLogger("test").warning("save -> first request on the new code: %.0f ms", delay_ms)
    assert served["call"] == 1  # new globals: a fresh worker, as a new Lambda version
    assert pool.reloads == 1
    # The old workers are gone, not left running beside the new one.
    await poll(lambda: len(pool.processes) <= 2)


async def test_syntax_error_keeps_old_code(
    pool: WorkerPoolInvoker, tmp_path: Path, watching: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="portway.reload")
    assert (await call(pool))["version"] == "v1"
    (tmp_path / "app.py").write_text("def handler(event, context:\n    return 1\n")
    await poll(lambda: any("failed to load" in r.getMessage() for r in caplog.records))
    message = next(r.getMessage() for r in caplog.records if "failed to load" in r.getMessage())
    assert "SyntaxError" in message
    result = await call(pool)
    assert result["version"] == "v1" and result["call"] == 2  # the same warm worker kept serving
    assert pool.reloads == 0
    write_handler(tmp_path, "v3-fixed")  # saving the fix reloads as usual
    deadline = time.monotonic() + 15.0
    while (await call(pool))["version"] != "v3-fixed":
        assert time.monotonic() < deadline, "the fixed code was never served"
        await asyncio.sleep(0.02)


async def test_call_in_flight_finishes_on_the_old_worker(pool: WorkerPoolInvoker, tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(
        "import time\ndef handler(event, context):\n    time.sleep(event['s'])\n    return 'old'\n"
    )
    slow = WorkerPoolInvoker(
        handler="slow.handler",
        code_dir=tmp_path,
        function_name="slow-fn",
        region="eu-west-1",
        account_id="111122223333",
    )
    try:
        await slow.start()
        running = asyncio.create_task(slow.invoke_event({"s": 1.0}, request_id="a", timeout_s=10.0))
        await poll(lambda: slow.idle == 0)
        (tmp_path / "slow.py").write_text("def handler(event, context):\n    return 'new code'\n")
        await slow.reload()
        assert await running == "old"
        assert await slow.invoke_event({}, request_id="b", timeout_s=10.0) == "new code"
    finally:
        await slow.close()


async def test_same_size_edit_in_the_same_second(
    pool: WorkerPoolInvoker, tmp_path: Path, watching: None
) -> None:
    """The .pyc of the first version must not be reused for an edit of the same size."""
    assert (await call(pool))["version"] == "v1"
    source = tmp_path / "app.py"
    stat = source.stat()
    write_handler(tmp_path, "v2")  # same length as v1
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # same second, still a change
    deadline = time.monotonic() + 15.0
    while (await call(pool))["version"] != "v2":
        assert time.monotonic() < deadline, "the old bytecode kept being served"
        await asyncio.sleep(0.02)


async def test_config_change_is_validated(
    pool: WorkerPoolInvoker, tmp_path: Path, watching: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portway.reload")
    config = tmp_path / "portway.yaml"

    def logged(text: str) -> bool:
        return any(text in record.getMessage() for record in caplog.records)

    config.write_text("portway: 1\napis:\n  - name: a\n    routes:\n      FETCH /z: {mock: {status: 200}}\n")
    await poll(lambda: logged("still serving the definition loaded at start"))
    assert any(r.levelno == logging.ERROR and "FETCH" in r.getMessage() for r in caplog.records)
    config.write_text("portway: 1\napis:\n  - name: a\n    routes:\n      GET /z: {mock: {status: 200}}\n")
    await poll(lambda: logged("is valid: restart portway"))
    assert pool.reloads == 0  # the definition is not code: no function restarted

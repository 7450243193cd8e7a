"""python_invoker / HandlerInvokers: mode selection and one shared invoker per function."""

from __future__ import annotations

from pathlib import Path

import pytest

from routes.integrations.python_handler import HandlerInvokers, python_invoker
from routes.integrations.python_inprocess import InProcessInvoker
from routes.integrations.python_workers import WorkerPoolInvoker
from server.config.model import IntegrationConfig, IntegrationType, Isolation, frozen_map

HANDLERS = Path(__file__).parent / "handlers"


def config(**kwargs: object) -> IntegrationConfig:
    values: dict[str, object] = {
        "type": IntegrationType.PYTHON,
        "handler": "fx_basic.echo",
        "code_dir": HANDLERS,
        "function_name": "shared",
    }
    values.update(kwargs)
    return IntegrationConfig(**values)  # type: ignore[arg-type]


def test_mode_follows_isolation() -> None:
    assert isinstance(python_invoker(config(), region="r", account_id="1"), WorkerPoolInvoker)
    inprocess = python_invoker(config(isolation=Isolation.INPROCESS), region="r", account_id="1")
    assert isinstance(inprocess, InProcessInvoker)
    with pytest.raises(ValueError, match="handler and code_dir"):
        python_invoker(config(code_dir=None), region="r", account_id="1")


async def test_routes_on_one_function_share_one_pool() -> None:
    invokers = HandlerInvokers(region="eu-west-1", account_id="111122223333")
    first = invokers.get(config(environment=frozen_map({"A": "1", "B": "2"}), timeout_ms=100))
    assert invokers.get(config(environment=frozen_map({"B": "2", "A": "1"}), timeout_ms=900)) is first
    assert invokers.get(config(code_dir=HANDLERS / "." / "")) is not first  # other environment
    assert invokers.get(config(environment=frozen_map({"A": "1", "B": "2"}), workers=2)) is not first
    assert invokers.get(config(isolation=Isolation.INPROCESS)) is not first
    assert len(invokers) == 4
    result = await first.invoke_event({"hi": 1}, request_id="r", timeout_s=5.0)
    assert result["context"]["function_name"] == "shared"
    assert isinstance(first, WorkerPoolInvoker)
    processes = first.processes
    await invokers.close_all()
    assert len(invokers) == 0
    assert processes and all(proc.returncode is not None for proc in processes)

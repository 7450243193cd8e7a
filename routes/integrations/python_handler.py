"""Pick the execution mode of a Python handler, and share one invoker per function.

``isolation: process`` (default) -> :class:`~routes.integrations.python_workers.WorkerPoolInvoker`;
``isolation: inprocess`` -> :class:`~routes.integrations.python_inprocess.InProcessInvoker`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Hashable
from pathlib import Path

from routes.integrations.base import LambdaInvoker
from routes.integrations.python_deps import CodeKey, WorkerCode, code_key, prepare_dependencies, worker_code
from routes.integrations.python_inprocess import InProcessInvoker
from routes.integrations.python_workers import WorkerPoolInvoker
from routes.integrations.runtime_api import RuntimeApiInvoker, uses_runtime_api
from server.config.model import GatewayConfig, IntegrationConfig, IntegrationType, Isolation

__all__ = ["HandlerInvokers", "function_name_of", "python_invoker"]

log = logging.getLogger("portway.functions")


def function_name_of(config: IntegrationConfig) -> str:
    """The configured name, else one derived from the handler (``app.handler`` -> ``app-handler``)."""
    return config.function_name or re.sub(r"[^A-Za-z0-9_-]", "-", config.handler or "function")


def python_invoker(
    config: IntegrationConfig,
    *,
    region: str,
    account_id: str,
    pass_env: tuple[str, ...] = (),
    code: WorkerCode | None = None,
) -> LambdaInvoker:
    """A new invoker for a PYTHON integration (prefer :class:`HandlerInvokers` to share them)."""
    if not config.handler or config.code_dir is None:
        raise ValueError("a Python integration needs both handler and code_dir")
    if uses_runtime_api(config.runtime):
        assert config.runtime is not None
        return RuntimeApiInvoker(
            runtime=config.runtime,
            handler=config.handler,
            code_dir=config.code_dir,
            function_name=function_name_of(config),
            region=region,
            account_id=account_id,
            environment=config.environment,
            memory_mb=config.memory_mb,
            workers=config.workers,
            pass_env=pass_env,
        )
    if config.isolation is Isolation.INPROCESS:
        return InProcessInvoker(
            handler=config.handler,
            code_dir=config.code_dir,
            function_name=function_name_of(config),
            region=region,
            account_id=account_id,
            memory_mb=config.memory_mb,
        )
    return WorkerPoolInvoker(
        handler=config.handler,
        code_dir=config.code_dir,
        function_name=function_name_of(config),
        region=region,
        account_id=account_id,
        environment=config.environment,
        memory_mb=config.memory_mb,
        workers=config.workers,
        pass_env=pass_env,
        code=code or worker_code(config),
        prestart=config.prestart,
        reserved_concurrency=config.reserved_concurrency,
    )


class HandlerInvokers:
    """One invoker per distinct function, so every route on a function shares one worker pool.

    A function is (code_dir, handler, environment, isolation, workers, runtime, layers,
    requirements), plus the name and memory its ``context`` reports: routes differing only in
    those must not see each other's values.
    Timeouts are per call and do not split functions.
    """

    def __init__(self, *, region: str, account_id: str, pass_env: tuple[str, ...] = ()) -> None:
        self._region = region
        self._account_id = account_id
        self._pass_env = pass_env
        self._invokers: dict[Hashable, LambdaInvoker] = {}
        # Kept after close_all: their threads may outlive the app (threads_alive).
        self._inprocess: list[InProcessInvoker] = []
        self._code: dict[CodeKey, WorkerCode] = {}

    async def prepare(self, config: GatewayConfig, cache: Path) -> None:
        """Before serving: pick every worker function's interpreter and install its requirements
        (raises ``DependencyError``). Without it, workers use the gateway's interpreter."""
        functions = [
            route.integration
            for api in config.apis
            for route in api.routes
            if route.integration.type is IntegrationType.PYTHON
            and route.integration.isolation is Isolation.PROCESS
            and not uses_runtime_api(route.integration.runtime)
        ]
        self._code = await prepare_dependencies(functions, cache)

    def __len__(self) -> int:
        return len(self._invokers)

    def all(self) -> list[LambdaInvoker]:
        """Every invoker built so far (``/@metrics`` reads the worker pools' counters)."""
        return list(self._invokers.values())

    def get(self, config: IntegrationConfig) -> LambdaInvoker:
        key = (
            os.path.abspath(config.code_dir or Path()),
            config.handler,
            tuple(sorted(config.environment.items())),
            config.isolation,
            config.workers,
            function_name_of(config),
            config.memory_mb,
            code_key(config),
            config.prestart,
            config.reserved_concurrency,
        )
        invoker = self._invokers.get(key)
        if invoker is None:
            invoker = python_invoker(
                config,
                region=self._region,
                account_id=self._account_id,
                pass_env=self._pass_env,
                code=self._code.get(code_key(config)),
            )
            self._invokers[key] = invoker
            if isinstance(invoker, InProcessInvoker):
                self._inprocess.append(invoker)
        return invoker

    async def prestart(self) -> None:
        """Start each worker pool's ``prestart`` workers (``provisionedConcurrency``), all at once.
        A function that fails to load is logged, not fatal: its calls fail as on a cold start."""
        pools = [
            inv for inv in self._invokers.values() if isinstance(inv, WorkerPoolInvoker) and inv.prestart
        ]
        results = await asyncio.gather(*(pool.start(pool.prestart) for pool in pools), return_exceptions=True)
        for pool, result in zip(pools, results, strict=True):
            if isinstance(result, Exception):
                log.error(
                    "function %s: pre-starting %d worker(s) failed: %s", pool.name, pool.prestart, result
                )
            elif isinstance(result, BaseException):
                raise result

    def threads_alive(self) -> int:
        """Sync in-process handler calls still running in their threads (a hung handler's
        thread never ends: the CLI exits without waiting for them)."""
        return sum(invoker.threads_running for invoker in self._inprocess)

    def drop_queued(self) -> None:
        """Drop the queued sync calls of every in-process function (synchronous: for the CLI,
        after a drain that did not finish)."""
        for invoker in self._inprocess:
            invoker.drop_queued()

    async def close_all(self) -> None:
        """Close every invoker (worker pools stop their processes); the registry is then empty."""
        invokers, self._invokers = list(self._invokers.values()), {}
        results = await asyncio.gather(*(invoker.close() for invoker in invokers), return_exceptions=True)
        for result in results:  # every pool got its chance to stop before the first error surfaces
            if isinstance(result, BaseException):
                raise result

"""Pick the execution mode of a Python handler, and share one invoker per function.

``isolation: process`` (default) -> :class:`~routes.integrations.python_workers.WorkerPoolInvoker`;
``isolation: inprocess`` -> :class:`~routes.integrations.python_inprocess.InProcessInvoker`.
"""

from __future__ import annotations

import asyncio
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
        return invoker

    async def close_all(self) -> None:
        """Close every invoker (worker pools stop their processes); the registry is then empty."""
        invokers, self._invokers = list(self._invokers.values()), {}
        results = await asyncio.gather(*(invoker.close() for invoker in invokers), return_exceptions=True)
        for result in results:  # every pool got its chance to stop before the first error surfaces
            if isinstance(result, BaseException):
                raise result

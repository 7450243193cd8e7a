"""Run a Python Lambda handler in a pool of worker processes (``isolation: process``, the default).

Each function gets ``workers`` long-lived children (:mod:`routes.integrations._worker_main`), each a
warm Lambda sandbox: module globals persist between invocations, one invocation at a time, its own
environment (Lambda's, never the gateway's: :mod:`routes.integrations.lambda_env`).

* Calls beyond the pool wait in a bounded FIFO queue; when ``max_queue`` callers already wait,
  the call fails at once with ``InvokeFailure`` (Lambda's throttle) instead of piling up.
* Workers start lazily (or with :meth:`WorkerPoolInvoker.start`); an import failure is an
  ``InvokeFailure`` and the next call tries again, like a fresh sandbox.
* The deadline covers queueing, a cold start and the handler. When it passes, the worker is
  SIGKILLed (a handler cannot be interrupted any other way) and the caller gets ``TimeoutError``.
  Any other failure while a worker is in use (it exited, crashed, ran out of its ``memorySize``,
  broke the protocol, or the caller was cancelled) also discards it; its slot spawns a fresh one
  on next use.
* The child's stdout and stderr are logged line by line to ``portway.function.<name>``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from routes.integrations.base import FunctionError, InvokeFailure
from routes.integrations.lambda_context import is_runtime_failure
from routes.integrations.python_deps import WorkerCode
from routes.integrations.python_worker_process import WorkerGone, WorkerProcess, function_env

__all__ = ["WorkerPoolInvoker"]

_INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit, for start() (calls use their own deadline)


class _Slots:
    """Pool slots: a warm worker, or ``None`` (start one on use), handed to waiters in strict FIFO
    order (a release goes straight to the oldest waiter, never to a newcomer). Free warm workers
    are handed out most recently used first, like Lambda reusing its warm sandboxes."""

    def __init__(self, size: int) -> None:
        self._free: collections.deque[WorkerProcess | None] = collections.deque([None] * size)
        self._waiters: collections.deque[asyncio.Future[WorkerProcess | None]] = collections.deque()

    @property
    def free(self) -> int:
        return len(self._free)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def take_all(self) -> list[WorkerProcess | None]:
        taken = list(self._free)
        self._free.clear()
        return taken

    async def acquire(self) -> WorkerProcess | None:
        if self._free and not self._waiters:
            return self._free.pop()
        waiter: asyncio.Future[WorkerProcess | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled: pass it on
                self.release(waiter.result())
            raise
        finally:
            if waiter in self._waiters:  # cancelled or timed out while queued
                self._waiters.remove(waiter)

    def release(self, worker: WorkerProcess | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        if worker is None:
            self._free.appendleft(worker)
        else:
            self._free.append(worker)


class WorkerPoolInvoker:
    """``LambdaInvoker`` running ``handler`` in up to ``workers`` child processes."""

    def __init__(
        self,
        *,
        handler: str,
        code_dir: Path,
        function_name: str,
        region: str,
        account_id: str,
        environment: Mapping[str, str] | None = None,
        memory_mb: int = 1024,
        workers: int = 1,
        max_queue: int = 64,
        grace_s: float = 2.0,
        pass_env: tuple[str, ...] = (),
        code: WorkerCode | None = None,
    ) -> None:
        if workers < 1 or max_queue < 0:
            raise ValueError("workers must be >= 1 and max_queue >= 0")
        self._code_dir = os.path.abspath(code_dir)
        self._name = function_name
        self._account_id = account_id
        self._max_queue = max_queue
        self._grace_s = grace_s
        self._log = logging.getLogger(f"portway.function.{function_name}")
        self._code = code or WorkerCode(sys.executable, f"{sys.version_info[0]}.{sys.version_info[1]}")
        self._env = function_env(
            handler, self._code_dir, function_name, region, memory_mb, environment, pass_env, self._code
        )
        self._slots = _Slots(workers)
        self._live: set[WorkerProcess] = set()
        self._reaping: set[asyncio.Task[None]] = set()
        self._next_id = 0
        self._closed = False
        self.spawned = 0
        self.timeouts = 0
        self.out_of_memory = 0
        self.killed = 0  # workers killed (timeout, out of memory, broken, failed start)
        self.queue_full = 0  # invocations refused because max_queue callers already waited

    @property
    def name(self) -> str:
        return self._name

    @property
    def waiting(self) -> int:
        """Callers queued for a free worker."""
        return self._slots.waiting

    @property
    def idle(self) -> int:
        """Free pool slots (a warm worker, or room to start one)."""
        return self._slots.free

    @property
    def processes(self) -> list[asyncio.subprocess.Process]:
        """The live worker processes (for monitoring and tests)."""
        return [worker.proc for worker in self._live]

    async def start(self) -> None:
        """Start every idle slot's worker now; raises InvokeFailure if the handler fails to load."""
        idle = self._slots.take_all()
        started: list[WorkerProcess | BaseException] = []
        try:
            async with asyncio.timeout(_INIT_TIMEOUT_S):
                started = await asyncio.gather(
                    *(self._spawn() for worker in idle if worker is None), return_exceptions=True
                )
        finally:  # on failure or cancellation the slots come back empty (each spawn cleaned up)
            ready = [w for w in idle if w is not None] + [w for w in started if isinstance(w, WorkerProcess)]
            for slot in [*([None] * (len(idle) - len(ready))), *ready]:
                self._slots.release(slot)
        for result in started:
            if isinstance(result, BaseException):
                raise result

    async def invoke_event(self, event: dict[str, Any], *, request_id: str, timeout_s: float) -> Any:
        if self._closed:
            raise InvokeFailure(f"function {self._name} is closed")
        self._next_id += 1
        call_id = self._next_id
        deadline_ms = int((time.time() + timeout_s) * 1000)
        try:
            frame = orjson.dumps(
                {"id": call_id, "event": event, "deadline_ms": deadline_ms, "request_id": request_id}
            )
        except TypeError as exc:
            raise InvokeFailure(f"event is not JSON-serialisable: {exc}") from None
        if not self._slots.free and self._slots.waiting >= self._max_queue:
            self.queue_full += 1
            raise InvokeFailure(f"function {self._name}: too many concurrent invocations (queue full)")
        scope = asyncio.timeout(timeout_s)
        worker: WorkerProcess | None = None
        acquired = False
        try:
            async with scope:
                worker = await self._slots.acquire()
                acquired = True
                if worker is not None and worker.proc.returncode is not None:  # died while idle
                    self._discard(worker)
                    worker = None
                if self._closed:
                    raise InvokeFailure(f"function {self._name} is closed")
                if worker is None:
                    worker = await self._spawn()
                await worker.send(frame)
                reply = await worker.receive()
                if reply.get("id") != call_id:
                    raise WorkerGone(f"worker answered call {reply.get('id')!r}, expected {call_id}")
                if reply.get("fatal"):  # out of memory: the worker is killing itself
                    self.out_of_memory += 1
                    self._discard(worker)
                    worker = None
        except BaseException as exc:
            # Whatever happened mid-call (timeout, crash, cancellation), this worker's state is
            # unknown: discard it. Killing is synchronous so it happens even if we are cancelled.
            if worker is not None:
                self._discard(worker)
                worker = None
            if isinstance(exc, TimeoutError) and scope.expired():
                self.timeouts += 1
            if isinstance(exc, WorkerGone):
                raise InvokeFailure(f"function {self._name}: {exc}") from None
            raise
        finally:
            if acquired:
                self._slots.release(worker)
        return _result(reply)

    async def _spawn(self) -> WorkerProcess:
        if self._closed:
            raise InvokeFailure(f"function {self._name} is closed")
        try:
            worker = await WorkerProcess.launch(
                self._env, self._code_dir, self._account_id, self._log, self._code
            )
        except OSError as exc:  # code_dir missing, no more processes/fds...
            raise InvokeFailure(f"function {self._name}: cannot start a worker: {exc}") from None
        self._live.add(worker)
        self.spawned += 1
        try:
            if self._closed:
                raise InvokeFailure(f"function {self._name} is closed")
            hello = await worker.receive()
        except BaseException as exc:
            self._discard(worker)
            if isinstance(exc, WorkerGone):
                raise InvokeFailure(f"function {self._name}: {exc}") from None
            raise
        if "init_error" in hello:
            self._discard(worker)
            error = hello["init_error"]
            raise InvokeFailure(f"{error.get('errorType')}: {error.get('errorMessage')}")
        return worker

    def _discard(self, worker: WorkerProcess) -> None:
        """Kill now (synchronous, so it happens even when we are being cancelled); reap later."""
        self.killed += 1
        worker.kill()
        self._live.discard(worker)
        task = worker.stop(self._grace_s)
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def close(self) -> None:
        """Stop every worker (terminate, SIGKILL after the grace period) and reap them all.

        Calls in flight fail with InvokeFailure; later calls are refused.
        """
        self._closed = True
        while self._live or self._reaping:
            live, self._live = self._live, set()
            await asyncio.gather(*(worker.stop(self._grace_s) for worker in live), *self._reaping)


def _result(reply: dict[str, Any]) -> Any:
    if "ok" in reply:
        return reply["ok"]
    error = reply.get("error")
    if not isinstance(error, dict):
        raise InvokeFailure("worker sent a reply with neither a result nor an error")
    error_type = str(error.get("errorType", "Unknown"))
    message = str(error.get("errorMessage", ""))
    if is_runtime_failure(error_type):
        raise InvokeFailure(f"{error_type}: {message}")
    trace = error.get("stackTrace")
    raise FunctionError(error_type, message, [str(line) for line in trace] if isinstance(trace, list) else [])

"""Run a Python Lambda handler inside the gateway process (``isolation: inprocess``).

Fast (no process hop) but shares everything with the gateway, which is why ``process`` is the
default isolation:

* **Environment**: ``IntegrationConfig.environment`` is *not* applied. ``os.environ`` is
  process-wide and handlers run concurrently, so setting it per call would leak values between
  functions; handlers see the gateway's environment.
* **Modules**: every in-process function shares ``sys.modules``. Two functions whose modules have
  the same name (``app.handler`` in two folders) cannot both load; the second gets an
  ``InvokeFailure`` naming the clash.
* **Timeouts**: an ``async def`` handler is cancelled at the deadline. A sync handler runs in a
  thread, and a thread cannot be killed: the caller gets ``TimeoutError`` while the thread runs on,
  holding one slot of *its function's* thread pool. :attr:`InProcessInvoker.stuck_threads` counts
  them. Each function has its own pool of :func:`default_thread_count` threads (created on
  demand), so hung calls of one function cannot starve the others (40 hung calls of one function
  used to fill a shared pool: every other sync function answered 504). Calls beyond a function's
  threads wait in its queue within their own integration timeout (504 when it passes; a call that
  times out while queued never runs). At shutdown the CLI exits after its drain timeout even if
  handler threads still run (``HandlerInvokers.threads_alive``: each invoker counts its own, no
  process-wide registry, so several apps in one process do not stop each other's pools).
* **Crashes**: ``os._exit``, a segfault or memory exhaustion take the gateway down with them.
* ``print()`` goes to the gateway's stdout; the root logger is the gateway's; an unhandled
  exception's traceback is logged to ``portway.function.<name>`` as workers log it.

Handler exceptions, including ``SystemExit``/``KeyboardInterrupt`` raised by handler code, become
``FunctionError``; the result is round-tripped through JSON with Lambda's encoding rules (the
event too, so a handler never mutates the gateway's objects).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from routes.integrations.base import FunctionError, InvokeFailure
from routes.integrations.lambda_context import (
    HandlerLoadError,
    LambdaContext,
    MarshalError,
    dumps,
    error_log_lines,
    error_payload,
    load_handler,
    new_log_stream_name,
    runtime_file,
)

__all__ = ["InProcessInvoker", "default_thread_count"]

runtime_file(__file__)

_path_lock = threading.Lock()


def default_thread_count() -> int:
    """Threads per in-process function (Python's own default for a thread pool)."""
    return min(32, (os.cpu_count() or 1) + 4)


def _new_executor(function_name: str, threads: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=threads, thread_name_prefix=f"portway-handler-{function_name}"
    )


class _Running:
    """Sync calls of one function running in its threads now (counted from those threads): a
    hung handler's thread never ends by itself, and Python waits for pool threads at exit, so
    the CLI exits without them after its drain (see ``HandlerInvokers.threads_alive``)."""

    __slots__ = ("count", "_lock")

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def run(self, function: Callable[..., Any], event: Any, context: LambdaContext) -> Any:
        """Runs in a handler thread; converts every handler exception there, while its
        traceback is live."""
        with self._lock:
            self.count += 1
        try:
            return function(event, context)
        except BaseException as exc:
            raise _function_error(exc) from None
        finally:
            with self._lock:
                self.count -= 1


class InProcessInvoker:
    """``LambdaInvoker`` running ``handler`` (``module.function`` under ``code_dir``) in this process."""

    def __init__(
        self,
        *,
        handler: str,
        code_dir: Path,
        function_name: str,
        region: str,
        account_id: str,
        memory_mb: int = 1024,
        threads: int | None = None,
    ) -> None:
        self._handler = handler
        self._code_dir = os.path.abspath(code_dir)
        self._function_name = function_name
        self._region = region
        self._account_id = account_id
        self._memory_mb = memory_mb
        self._threads = threads or default_thread_count()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None  # created on first sync call
        self._running = _Running()
        self._log_stream = new_log_stream_name()
        self._log = logging.getLogger(f"portway.function.{function_name}")
        self._function: Callable[..., Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._is_async = False
        self._loading: asyncio.Future[Callable[..., Any]] | None = None
        self._stuck: set[concurrent.futures.Future[Any]] = set()
        self._closed = False
        self.timeouts = 0

    @property
    def stuck_threads(self) -> int:
        """Sync handler calls that timed out but are still running in their thread."""
        return len(self._stuck)

    async def load(self) -> Callable[..., Any]:
        """Import the handler (once; retried after a failure, like a new Lambda sandbox)."""
        if self._function is not None:
            return self._function
        if self._loading is None:
            # One import shared by concurrent first callers; a caller giving up does not abort it.
            self._loading = asyncio.get_running_loop().run_in_executor(None, self._import)
        loading = self._loading
        try:
            function = await asyncio.shield(loading)
        except Exception as exc:  # HandlerLoadError, or anything unexpected from the import machinery
            if self._loading is loading:
                self._loading = None
            raise InvokeFailure(str(exc)) from None
        self._is_async = inspect.iscoroutinefunction(function)
        self._function = function
        self._loop = asyncio.get_running_loop()
        return function

    def _import(self) -> Callable[..., Any]:
        with _path_lock:
            if self._code_dir not in sys.path:
                sys.path.insert(0, self._code_dir)
        module_name = self._handler.rsplit(".", 1)[0].replace("/", ".")
        top = module_name.split(".")[0]
        loaded = sys.modules.get(top)
        if loaded is not None and top not in sys.builtin_module_names:
            origin = getattr(loaded, "__file__", None) or "a namespace package"
            if not (isinstance(origin, str) and os.path.abspath(origin).startswith(self._code_dir + os.sep)):
                raise HandlerLoadError(
                    "Runtime.ImportModuleError",
                    f"Unable to import module '{module_name}': module '{top}' is already loaded from "
                    f"{origin} (in-process functions share sys.modules; use isolation: process)",
                )
        return load_handler(self._handler)

    async def invoke_event(self, event: dict[str, Any], *, request_id: str, timeout_s: float) -> Any:
        if self._closed:
            raise InvokeFailure(f"function {self._function_name} is closed")
        deadline_ms = int((time.time() + timeout_s) * 1000)
        # No defensive copy of the event: every event the gateway builds is fresh, JSON-native and
        # never read again after this call (a copy cost ~4 µs per WebSocket message).
        payload = event
        function = self._function if self._function is not None else await self.load()
        context = LambdaContext(
            aws_request_id=request_id,
            function_name=self._function_name,
            memory_limit_in_mb=self._memory_mb,
            region=self._region,
            account_id=self._account_id,
            deadline_ms=deadline_ms,
            log_stream_name=self._log_stream,
        )
        # A bare call_later + cancel instead of asyncio.timeout(): same semantics for this one
        # await, at a third of the cost (this is the WebSocket message hot path).
        # The loop is cached: asyncio.get_running_loop() makes a getpid() syscall on Python 3.11.
        loop = self._loop if self._loop is not None else asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        handle = loop.call_later(timeout_s, expire)
        try:
            if self._is_async:
                result = await self._call_async(functools.partial(function, payload, context))
            else:
                result = await self._call_sync(function, payload, context)
        except asyncio.CancelledError:
            if expired and task.uncancel() == 0:
                self.timeouts += 1
                raise TimeoutError from None
            raise
        except FunctionError as exc:
            # A handler that turned our cancellation into an exception still timed out.
            if expired:
                task.uncancel()
                self.timeouts += 1
                raise TimeoutError from None
            # Lambda logs the error and its traceback in the function's log, as workers do.
            payload = {
                "errorType": exc.error_type,
                "errorMessage": exc.error_message,
                "stackTrace": exc.stack_trace,
            }
            for line in error_log_lines(payload):
                self._log.error("%s", line)
            raise
        finally:
            handle.cancel()
        if expired:  # the handler swallowed the cancellation and returned late
            task.uncancel()
            self.timeouts += 1
            raise TimeoutError
        try:
            return orjson.loads(dumps(result))
        except MarshalError as exc:
            raise InvokeFailure(str(exc)) from None

    async def _call_async(self, call: Callable[[], Any]) -> Any:
        try:
            result = call()
            return await result if inspect.isawaitable(result) else result
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our own cancellation (timeout, shutdown): not the handler's error
            raise _function_error(exc) from None
        except BaseException as exc:  # SystemExit & co. from handler code must not stop the gateway
            raise _function_error(exc) from None

    async def _call_sync(self, function: Callable[..., Any], event: Any, context: LambdaContext) -> Any:
        executor = self._executor
        if executor is None:
            executor = self._executor = _new_executor(self._function_name, self._threads)
        future = executor.submit(self._running.run, function, event, context)
        try:
            result = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel():  # already running: the thread cannot be stopped, only counted
                self._stuck.add(future)
                future.add_done_callback(self._stuck.discard)
            raise
        # A sync function may return an awaitable (e.g. a wrapped coroutine function).
        return await self._call_async(lambda: result) if inspect.isawaitable(result) else result

    async def close(self) -> None:
        """Refuse new calls and drop queued ones. Running sync handlers cannot be stopped: they
        finish in their threads, which end then."""
        self._closed = True
        self.drop_queued()

    @property
    def threads_running(self) -> int:
        """Sync calls of this function running in its threads right now."""
        return self._running.count

    def drop_queued(self) -> None:
        """Drop queued sync calls (running ones cannot be stopped). Synchronous: the CLI calls it
        after a drain that timed out, when no coroutine may run any more."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _function_error(exc: BaseException) -> FunctionError:
    payload = error_payload(exc)
    return FunctionError(payload["errorType"], payload["errorMessage"], payload["stackTrace"])

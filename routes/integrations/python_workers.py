"""Run a Python Lambda handler in a pool of worker processes (``isolation: process``, the default).

Each function gets ``workers`` long-lived children (:mod:`routes.integrations._worker_main`), each a
warm Lambda sandbox: module globals persist between invocations, one invocation at a time, its own
environment (gateway env + ``IntegrationConfig.environment`` + Lambda's reserved variables).

* Calls beyond the pool wait in a bounded FIFO queue; when ``max_queue`` callers already wait,
  the call fails at once with ``InvokeFailure`` (Lambda's throttle) instead of piling up.
* Workers start lazily (or with :meth:`WorkerPoolInvoker.start`); an import failure is an
  ``InvokeFailure`` and the next call tries again, like a fresh sandbox.
* The deadline covers queueing, a cold start and the handler. When it passes, the worker is
  SIGKILLed (a handler cannot be interrupted any other way) and the caller gets ``TimeoutError``.
  Any other failure while a worker is in use (it exited, crashed, was OOM-killed, broke the
  protocol, or the caller was cancelled) also discards it; its slot spawns a fresh one on next use.
* The child's stdout and stderr are logged line by line to ``portway.function.<name>``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import struct
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from routes.integrations.base import FunctionError, InvokeFailure
from routes.integrations.lambda_context import MAX_RESPONSE_BYTES, is_runtime_failure, new_log_stream_name

__all__ = ["WorkerPoolInvoker"]

_HEADER = struct.Struct(">I")
_MAX_FRAME = MAX_RESPONSE_BYTES + 64 * 1024  # the child enforces the 6 MB limit; this guards the pipe
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
_INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit, for start() (calls use their own deadline)


class _WorkerGone(Exception):
    """The worker cannot be used any more (exited, or spoke garbage)."""


class _Worker:
    """One child process and its pipes. Not reusable after any exception."""

    def __init__(self, proc: asyncio.subprocess.Process, log: logging.Logger) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._log_task = asyncio.create_task(_log_lines(proc.stderr, log, proc.pid))
        self._stopping: asyncio.Task[None] | None = None
        self._reading = False
        self._signalled: signal.Signals | None = None

    async def send(self, data: bytes) -> None:
        try:
            self._stdin.writelines((_HEADER.pack(len(data)), data))
            await self._stdin.drain()
        except (ConnectionError, RuntimeError) as exc:  # RuntimeError: transport already closed
            raise _WorkerGone(await self.exit_reason()) from exc

    async def receive(self) -> dict[str, Any]:
        self._reading = True
        try:
            (size,) = _HEADER.unpack(await self._stdout.readexactly(_HEADER.size))
            if size > _MAX_FRAME:
                raise _WorkerGone(f"worker sent a {size}-byte frame")
            frame = orjson.loads(await self._stdout.readexactly(size))
        except asyncio.IncompleteReadError:
            raise _WorkerGone(await self.exit_reason()) from None
        except orjson.JSONDecodeError as exc:
            raise _WorkerGone(f"worker sent an undecodable frame: {exc}") from None
        finally:
            self._reading = False
        if not isinstance(frame, dict):
            raise _WorkerGone("worker sent a frame that is not an object")
        return frame

    async def exit_reason(self) -> str:
        """Lambda's wording for a dead runtime; waits briefly for the exit status after EOF."""
        try:
            code = await asyncio.wait_for(self.proc.wait(), 2.0)
        except TimeoutError:
            return "Runtime.ExitError: Runtime closed its output but did not exit"
        if code < 0:
            try:
                how = f"signal: {signal.Signals(-code).name}"
            except ValueError:
                how = f"signal: {-code}"
        else:
            how = f"exit status {code}"
        return f"Runtime.ExitError: Runtime exited with error: {how}"

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        # Signal at most once, and SIGKILL at most once: Popen.send_signal() polls first, and a poll
        # that reaps an already-dead child makes asyncio's watcher report exit code 255 instead.
        if self.proc.returncode is None and self._signalled not in (sig, signal.SIGKILL):
            self._signalled = sig
            with contextlib.suppress(ProcessLookupError):  # exited since the check; wait() reaps it
                self.proc.send_signal(sig)

    def stop(self, grace_s: float) -> asyncio.Task[None]:
        """Terminate (SIGKILL after ``grace_s``) and reap; one shared task however often called."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop(grace_s))
        return self._stopping

    async def _stop(self, grace_s: float) -> None:
        if self.proc.returncode is None:
            self._stdin.close()  # an idle worker exits by itself on EOF
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace_s)
            except TimeoutError:
                self.kill()
        await self.proc.wait()
        self._stdin.close()
        # Drain unread stdout so the pipe sees EOF and the transport closes (no ResourceWarning),
        # unless a call is reading it (close() during a call): that call reads on to EOF itself.
        while not self._reading and await self._stdout.read(65536):
            pass
        try:  # a grandchild that inherited stderr could hold it open: do not wait for it forever
            await asyncio.wait_for(asyncio.shield(self._log_task), 1.0)
        except TimeoutError:
            self._log_task.cancel()


async def _log_lines(stream: asyncio.StreamReader, log: logging.Logger, pid: int) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # longer than the stream limit: that part is dropped
            log.info("[pid %d] (line too long, truncated)", pid)
            continue
        if not line:
            return
        log.info("%s", line.decode(errors="replace").rstrip("\r\n"), extra={"worker_pid": pid})


class _Slots(asyncio.Queue["_Worker | None"]):
    """Pool slots: a warm worker, or ``None`` (start one on use). Warm workers are handed out
    first (most recently used on top, like Lambda reusing warm sandboxes); waiters stay FIFO."""

    def _init(self, maxsize: int) -> None:
        self._queue: collections.deque[_Worker | None] = collections.deque()

    def _put(self, item: _Worker | None) -> None:
        if item is None:
            self._queue.appendleft(item)
        else:
            self._queue.append(item)

    def _get(self) -> _Worker | None:
        return self._queue.pop()


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
    ) -> None:
        if workers < 1 or max_queue < 0:
            raise ValueError("workers must be >= 1 and max_queue >= 0")
        self._code_dir = os.path.abspath(code_dir)
        self._name = function_name
        self._account_id = account_id
        self._max_queue = max_queue
        self._grace_s = grace_s
        self._log = logging.getLogger(f"portway.function.{function_name}")
        self._env = _function_env(handler, self._code_dir, function_name, region, memory_mb, environment)
        self._slots = _Slots()
        for _ in range(workers):
            self._slots.put_nowait(None)
        self._live: set[_Worker] = set()
        self._reaping: set[asyncio.Task[None]] = set()
        self._waiting = 0
        self._next_id = 0
        self._closed = False
        self.spawned = 0
        self.timeouts = 0

    @property
    def waiting(self) -> int:
        """Callers queued for a free worker."""
        return self._waiting

    @property
    def idle(self) -> int:
        """Free pool slots (a warm worker, or room to start one)."""
        return self._slots.qsize()

    @property
    def processes(self) -> list[asyncio.subprocess.Process]:
        """The live worker processes (for monitoring and tests)."""
        return [worker.proc for worker in self._live]

    async def start(self) -> None:
        """Start every idle slot's worker now; raises InvokeFailure if the handler fails to load."""
        idle = [self._slots.get_nowait() for _ in range(self._slots.qsize())]
        started: list[_Worker | BaseException] = []
        try:
            async with asyncio.timeout(_INIT_TIMEOUT_S):
                started = await asyncio.gather(
                    *(self._spawn() for worker in idle if worker is None), return_exceptions=True
                )
        finally:  # on failure or cancellation the slots come back empty (each spawn cleaned up)
            ready = [w for w in idle if w is not None] + [w for w in started if isinstance(w, _Worker)]
            for slot in [*([None] * (len(idle) - len(ready))), *ready]:
                self._slots.put_nowait(slot)
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
        if self._slots.empty() and self._waiting >= self._max_queue:
            raise InvokeFailure(f"function {self._name}: too many concurrent invocations (queue full)")
        scope = asyncio.timeout(timeout_s)
        worker: _Worker | None = None
        acquired = False
        try:
            async with scope:
                self._waiting += 1
                try:
                    worker = await self._slots.get()
                finally:
                    self._waiting -= 1
                acquired = True
                if worker is not None and worker.proc.returncode is not None:  # died while idle
                    self._discard(worker)
                    worker = None
                if worker is None:
                    worker = await self._spawn()
                await worker.send(frame)
                reply = await worker.receive()
                if reply.get("id") != call_id:
                    raise _WorkerGone(f"worker answered call {reply.get('id')!r}, expected {call_id}")
        except BaseException as exc:
            # Whatever happened mid-call (timeout, crash, cancellation), this worker's state is
            # unknown: discard it. Killing is synchronous so it happens even if we are cancelled.
            if worker is not None:
                self._discard(worker)
                worker = None
            if isinstance(exc, TimeoutError) and scope.expired():
                self.timeouts += 1
            if isinstance(exc, _WorkerGone):
                raise InvokeFailure(f"function {self._name}: {exc}") from None
            raise
        finally:
            if acquired:
                self._slots.put_nowait(worker)
        return _result(reply)

    async def _spawn(self) -> _Worker:
        if self._closed:
            raise InvokeFailure(f"function {self._name} is closed")
        env = {**self._env, "AWS_LAMBDA_LOG_STREAM_NAME": new_log_stream_name()}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # no cwd on sys.path: a user package named ``routes`` must not shadow ours
            "-m",
            "routes.integrations._worker_main",
            self._account_id,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self._code_dir,
            env=env,
        )
        worker = _Worker(proc, self._log)
        self._live.add(worker)
        self.spawned += 1
        try:
            if self._closed:
                raise InvokeFailure(f"function {self._name} is closed")
            hello = await worker.receive()
        except BaseException as exc:
            self._discard(worker)
            if isinstance(exc, _WorkerGone):
                raise InvokeFailure(f"function {self._name}: {exc}") from None
            raise
        if "init_error" in hello:
            self._discard(worker)
            error = hello["init_error"]
            raise InvokeFailure(f"{error.get('errorType')}: {error.get('errorMessage')}")
        return worker

    def _discard(self, worker: _Worker) -> None:
        """Kill now (synchronous, so it happens even when we are being cancelled); reap later."""
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


def _function_env(
    handler: str, code_dir: str, name: str, region: str, memory_mb: int, environment: Mapping[str, str] | None
) -> dict[str, str]:
    """Gateway env, then the function's own, then Lambda's reserved variables (which always win)."""
    python_path = [_REPO_ROOT, code_dir, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {
        **os.environ,
        **(environment or {}),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LAMBDA_TASK_ROOT": code_dir,
        "_HANDLER": handler,
        "PYTHONPATH": os.pathsep.join(python_path),
    }


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

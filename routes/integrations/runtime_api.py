"""Functions of other runtimes, served through the Lambda Runtime API.

Each worker is a child process (a custom runtime's ``bootstrap``, AWS's runtime interface
clients, or Portway's bundled Node shim) that long-polls its *own* loopback Runtime API server,
whose ``host:port`` it finds in ``AWS_LAMBDA_RUNTIME_API``. One server per worker gives per-worker
routing for free: a request on that port can only be about that worker's invocation.

Endpoints (AWS's Runtime API, version 2018-06-01):

* ``GET  /2018-06-01/runtime/invocation/next``: blocks until an invocation is handed to this
  worker; the body is the event, the ``Lambda-Runtime-*`` headers carry the request id, the
  deadline (epoch ms), the function ARN, the trace id, and client context / Cognito identity.
* ``POST /2018-06-01/runtime/invocation/{id}/response``: the result (202 ``{"status":"OK"}``).
* ``POST /2018-06-01/runtime/invocation/{id}/error``: the function's error payload
  (``errorType``/``errorMessage``/``stackTrace``) -> :class:`FunctionError`.
* ``POST /2018-06-01/runtime/init/error``: the runtime could not initialise -> the call fails
  with :class:`InvokeFailure` and the worker is discarded, like a failed Lambda init.

A request id that is not the worker's current invocation answers 400 ``InvalidRequestID``; a
response larger than Lambda's 6 MB answers 413 ``RequestEntityTooLarge``.

Pool policy as for Python workers: one invocation at a time per worker, warm workers reused, a
timeout or any failure mid-call SIGKILLs the worker (its slot starts a fresh one on next use), and
``memorySize`` (+64 MB) is the worker's ``RLIMIT_DATA``: a runtime that needs more dies (Node aborts
with "JavaScript heap out of memory") and the call fails with Lambda's ``Runtime.ExitError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from routes.integrations.base import FunctionError, InvokeFailure
from routes.integrations.lambda_context import MAX_RESPONSE_BYTES, is_runtime_failure, new_log_stream_name
from routes.integrations.lambda_env import lambda_environment

__all__ = ["RuntimeApiInvoker", "RuntimeUnavailable", "runtime_command", "uses_runtime_api"]

_PREFIX = "/2018-06-01/runtime"
_INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit
_MEMORY_HEADROOM_MB = 64  # the same allowance Python workers get over memorySize
_NODE_SHIM = Path(__file__).with_name("node_runtime_shim.js")


class RuntimeUnavailable(ValueError):
    """A function's runtime cannot run here (bootstrap or interpreter missing): a load-time error."""


def uses_runtime_api(runtime: str | None) -> bool:
    """True for the runtimes served through the Runtime API (Python keeps its native workers)."""
    return runtime is not None and runtime.startswith(("provided", "nodejs"))


def runtime_command(runtime: str, code_dir: Path) -> list[str]:
    """The command that starts one worker of ``runtime``; raises :class:`RuntimeUnavailable` when the
    bootstrap or interpreter is missing, so a bad function fails when the config loads."""
    if runtime.startswith("provided"):
        bootstrap = code_dir / "bootstrap"
        if not bootstrap.is_file():
            raise RuntimeUnavailable(f"runtime {runtime}: no bootstrap in {code_dir}")
        if not os.access(bootstrap, os.X_OK):
            raise RuntimeUnavailable(f"runtime {runtime}: {bootstrap} is not executable (chmod +x)")
        return [str(bootstrap)]
    if runtime.startswith("nodejs"):
        node = shutil.which("node")
        if node is None:
            raise RuntimeUnavailable(f"runtime {runtime}: Node.js is not installed here (no 'node' on PATH)")
        return [node, str(_NODE_SHIM)]
    raise RuntimeUnavailable(f"runtime {runtime} is not served through the Runtime API")


@dataclass
class _Invocation:
    request_id: str
    body: bytes
    deadline_ms: int
    result: asyncio.Future[bytes] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _json(status: int, payload: Mapping[str, str]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


class _Worker:
    """One child process and its own Runtime API server. Not reusable after any failure."""

    def __init__(self, function_arn: str, log: logging.Logger) -> None:
        self._arn = function_arn
        self._log = log
        self._pending: asyncio.Queue[_Invocation] = asyncio.Queue(maxsize=1)
        self.current: _Invocation | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.proc: asyncio.subprocess.Process | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0

    async def start(self, command: list[str], env: Mapping[str, str], cwd: str) -> None:
        app = web.Application(client_max_size=MAX_RESPONSE_BYTES + 64 * 1024)
        app.router.add_get(f"{_PREFIX}/invocation/next", self._next)
        app.router.add_post(f"{_PREFIX}/invocation/{{id}}/response", self._response)
        app.router.add_post(f"{_PREFIX}/invocation/{{id}}/error", self._error)
        app.router.add_post(f"{_PREFIX}/init/error", self._init_error)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # loopback only; the port is this worker's alone
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env={
                **env,
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
                "AWS_LAMBDA_LOG_STREAM_NAME": new_log_stream_name(),
            },
            start_new_session=True,  # a shell bootstrap's children die with it (killpg)
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        pid = self.proc.pid
        self._tasks = [
            asyncio.create_task(_log_lines(self.proc.stdout, self._log, pid)),
            asyncio.create_task(_log_lines(self.proc.stderr, self._log, pid)),
            asyncio.create_task(self._watch()),
        ]

    async def _watch(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        reason = _exit_reason(code)
        if not self.ready.done():
            self.ready.set_exception(InvokeFailure(reason))
            self.ready.exception()  # retrieved: nobody may be waiting yet
        if self.current is not None and not self.current.result.done():
            self.current.result.set_exception(InvokeFailure(reason))

    async def invoke(self, invocation: _Invocation) -> bytes:
        self.current = invocation
        self._pending.put_nowait(invocation)
        return await invocation.result

    # Runtime API handlers -------------------------------------------------------------------

    async def _next(self, request: web.Request) -> web.StreamResponse:
        if not self.ready.done():
            self.ready.set_result(None)
        invocation = await self._pending.get()
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self._arn,
            "Lambda-Runtime-Trace-Id": _trace_id(invocation.request_id),
            # API Gateway invocations carry neither; AWS sends the headers only when set, and the
            # RICs read them as optional.
        }
        return web.Response(body=invocation.body, headers=headers, content_type="application/json")

    def _invocation(self, request: web.Request) -> _Invocation | None:
        current = self.current
        if current is None or current.request_id != request.match_info["id"] or current.result.done():
            return None
        return current

    async def _response(self, request: web.Request) -> web.StreamResponse:
        invocation = self._invocation(request)
        if invocation is None:
            return _json(400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # past client_max_size: certainly past the limit
            body = b""
            too_large = True
        else:
            too_large = len(body) > MAX_RESPONSE_BYTES
        if too_large:
            message = (
                f"Response payload size ({request.content_length or len(body)} bytes) exceeded maximum "
                f"allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            )
            invocation.result.set_exception(FunctionError("Function.ResponseSizeTooLarge", message))
            return _json(413, {"errorMessage": message, "errorType": "RequestEntityTooLarge"})
        invocation.result.set_result(body)
        return _json(202, {"status": "OK"})

    async def _error(self, request: web.Request) -> web.StreamResponse:
        invocation = self._invocation(request)
        if invocation is None:
            return _json(400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
        invocation.result.set_exception(_error_of(await request.read(), request.headers))
        return _json(202, {"status": "OK"})

    async def _init_error(self, request: web.Request) -> web.StreamResponse:
        error = _error_of(await request.read(), request.headers)
        failure = InvokeFailure(f"{error.error_type}: {error.error_message}")
        if not self.ready.done():
            self.ready.set_exception(failure)
            self.ready.exception()
        return _json(202, {"status": "OK"})

    # Teardown -------------------------------------------------------------------------------

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        self.kill()
        if self.proc is not None:
            await self.proc.wait()
        for task in self._tasks:
            try:  # a grandchild holding the pipes open must not block the stop
                await asyncio.wait_for(asyncio.shield(task), 1.0)
            except TimeoutError:
                task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()


def _error_of(body: bytes, headers: Mapping[str, str]) -> FunctionError:
    """Lambda's error payload; an unparsable one becomes ``Runtime.Unknown`` like on AWS."""
    try:
        payload = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    error_type = str(
        payload.get("errorType") or headers.get("Lambda-Runtime-Function-Error-Type") or "Runtime.Unknown"
    )
    trace = payload.get("stackTrace", payload.get("trace"))  # Node's runtime names it "trace"
    return FunctionError(
        error_type,
        str(payload.get("errorMessage", "")),
        [str(line) for line in trace] if isinstance(trace, list) else [],
    )


def _trace_id(request_id: str) -> str:
    """An X-Ray header shaped like Lambda's, derived from the request id (no tracing here)."""
    digits = request_id.replace("-", "").ljust(24, "0")
    return f"Root=1-{int(time.time()):08x}-{digits[:24]};Parent={digits[-16:]};Sampled=0"


def _exit_reason(code: int) -> str:
    # Lambda's wording is Go's: "signal: killed", "exit status 1".
    how = f"signal: {(signal.strsignal(-code) or str(-code)).lower()}" if code < 0 else f"exit status {code}"
    return f"Runtime.ExitError: Runtime exited with error: {how}"


async def _log_lines(stream: asyncio.StreamReader, log: logging.Logger, pid: int) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # longer than the stream limit: that part is dropped
            continue
        if not line:
            return
        log.info("%s", line.decode(errors="replace").rstrip("\r\n"), extra={"worker_pid": pid})


class RuntimeApiInvoker:
    """``LambdaInvoker`` running a function of another runtime in up to ``workers`` processes."""

    def __init__(
        self,
        *,
        runtime: str,
        handler: str,
        code_dir: Path,
        function_name: str,
        region: str,
        account_id: str,
        environment: Mapping[str, str] | None = None,
        memory_mb: int = 1024,
        workers: int = 1,
        pass_env: tuple[str, ...] = (),
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._code_dir = os.path.abspath(code_dir)
        # memorySize as RLIMIT_DATA (+64 MB for the runtime itself), as for Python workers; set by
        # the shell that then execs the runtime, so it holds from the first instruction (no race).
        self._command = [
            "/bin/sh",
            "-c",
            'ulimit -d "$0" && exec "$@"',
            str((memory_mb + _MEMORY_HEADROOM_MB) * 1024),
            *runtime_command(runtime, Path(self._code_dir)),
        ]
        self._name = function_name
        self._arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self._log = logging.getLogger(f"portway.function.{function_name}")
        env = lambda_environment(
            os.environ,
            handler=handler,
            task_root=self._code_dir,
            runtime_dir=str(_NODE_SHIM.parent),
            name=function_name,
            region=region,
            memory_mb=memory_mb,
            environment=environment,
            pass_env=pass_env,
        )
        env.pop("PYTHONPATH", None)  # Portway's own code is not this runtime's business
        env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{runtime}"
        self._env = env
        self._idle: list[_Worker] = []
        self._slots = asyncio.Semaphore(workers)
        self._live: set[_Worker] = set()
        self._reaping: set[asyncio.Task[None]] = set()
        self._closed = False
        self.spawned = 0
        self.timeouts = 0

    @property
    def processes(self) -> list[asyncio.subprocess.Process]:
        return [worker.proc for worker in self._live if worker.proc is not None]

    async def start(self) -> None:
        """Start one worker now (pre-warm); raises InvokeFailure if its runtime fails to init."""
        async with self._slots:
            self._idle.append(await self._spawn())

    async def invoke_event(self, event: dict[str, Any], *, request_id: str, timeout_s: float) -> Any:
        if self._closed:
            raise InvokeFailure(f"function {self._name} is closed")
        try:
            body = orjson.dumps(event)
        except TypeError as exc:
            raise InvokeFailure(f"event is not JSON-serialisable: {exc}") from None
        deadline_ms = int((time.time() + timeout_s) * 1000)
        scope = asyncio.timeout(timeout_s)
        worker: _Worker | None = None
        try:
            async with scope, self._slots:
                while self._idle and worker is None:
                    worker = self._idle.pop()
                    if worker.proc is None or worker.proc.returncode is not None:  # died while idle
                        self._discard(worker)
                        worker = None
                if worker is None:
                    worker = await self._spawn()
                try:
                    raw = await worker.invoke(_Invocation(request_id, body, deadline_ms))
                except FunctionError as exc:
                    # A handler's error (or Function.ResponseSizeTooLarge) keeps the sandbox
                    # warm; a Runtime.* one (the runtime itself is failing, e.g. an unhandled
                    # rejection) discards it, as Lambda resets the sandbox.
                    if not exc.error_type.startswith("Runtime."):
                        worker.current = None
                        self._idle.append(worker)
                    raise
                worker.current = None
                self._idle.append(worker)
        except BaseException as exc:
            if worker is not None and worker not in self._idle:
                self._discard(worker)
            if isinstance(exc, TimeoutError) and scope.expired():
                self.timeouts += 1
            if isinstance(exc, FunctionError) and is_runtime_failure(exc.error_type):
                raise InvokeFailure(f"{exc.error_type}: {exc.error_message}") from None
            raise
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return raw.decode(errors="replace")  # Lambda passes a non-JSON payload through as is

    async def _spawn(self) -> _Worker:
        if self._closed:
            raise InvokeFailure(f"function {self._name} is closed")
        worker = _Worker(self._arn, self._log)
        self._live.add(worker)
        self.spawned += 1
        try:
            try:
                await worker.start(self._command, self._env, self._code_dir)
            except OSError as exc:
                raise InvokeFailure(f"function {self._name}: cannot start a worker: {exc}") from None
            async with asyncio.timeout(_INIT_TIMEOUT_S):
                await worker.ready
        except BaseException:
            self._discard(worker)
            raise
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()  # synchronous, so it happens even when we are being cancelled
        self._live.discard(worker)
        task = asyncio.get_running_loop().create_task(worker.stop())
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def close(self) -> None:
        self._closed = True
        live, self._live = list(self._live), set()
        self._idle.clear()
        await asyncio.gather(*(worker.stop() for worker in live), *list(self._reaping))

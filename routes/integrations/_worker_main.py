"""Worker child: runs one Python Lambda handler, one invocation at a time, for the gateway.

Started by :mod:`routes.integrations.python_workers` as
``python -P -m routes.integrations._worker_main <account_id> <gateway pid> [path...]`` (the
function's requirements and layer folders, which follow the task root on ``sys.path``) with Lambda's
environment variables (``_HANDLER``, ``LAMBDA_TASK_ROOT``, ``AWS_LAMBDA_FUNCTION_NAME``, ...) and
``cwd=LAMBDA_TASK_ROOT``.

Protocol on the original stdin/stdout pipes, every frame a 4-byte big-endian length + orjson:

* child -> gateway, once: ``{"ready": pid}`` or ``{"init_error": {errorType, errorMessage, stackTrace}}``
  (then the child exits; the gateway retries init on the next invocation, like a new sandbox).
* gateway -> child: ``{"id", "event", "deadline_ms", "request_id"}``.
* child -> gateway: ``{"id", "ok": result}`` or ``{"id", "error": {errorType, errorMessage, stackTrace}}``;
  error types ``Runtime.*``/``Function.*`` are Lambda's own (marshal, size), others are exceptions.

**Batches**: the gateway may write several invocation frames at once (the calls that queued while
this worker was busy); they are read together and run one at a time, in order, as on Lambda. Each
reply is written as soon as its call returns: a reply held back to be written with the next ones
would be lost if the next handler crashed the process (``os._exit``, a segfault), and the gateway
could not tell which calls had run. One read per batch instead of per call: on a shared core, each
pipe round trip is two context switches.

EOF on the protocol input means the gateway is done: the child exits 0. Like Lambda's runtime,
only ``Exception`` is caught: ``sys.exit()`` in a handler ends the worker (``Runtime.ExitError``).

**Memory** (``memorySize``): the worker limits its own ``RLIMIT_DATA`` (heap, private mappings and
thread stacks; not the shared libraries' code, which ``RLIMIT_AS`` would count and which Lambda
does not bill against memory either) to ``memorySize`` plus :data:`MEMORY_HEADROOM_MB` for the
interpreter and this runtime. An allocation beyond it raises ``MemoryError``; one that reaches the
runtime ends the sandbox as Lambda's does: a ``Runtime.OutOfMemory`` error frame marked ``fatal``
(the gateway discards the worker), then SIGKILL.
"""

from __future__ import annotations

import inspect
import io
import os
import signal
import struct
import sys
from collections.abc import Callable
from typing import IO, Any

import orjson

from routes.integrations import wsgi_adapter
from routes.integrations.lambda_context import (
    HandlerLoadError,
    LambdaContext,
    MarshalError,
    dumps,
    error_log_lines,
    error_payload,
    load_handler,
    runtime_file,
)

_HEADER = struct.Struct(">I")
_READ_SIZE = 1 << 20
runtime_file(__file__)
runtime_file(wsgi_adapter.__file__)

# Above memorySize: the interpreter, orjson and this runtime (~10 MB of data) and a few thread
# stacks (8 MB of address space each), so a function fits in about what it needs on Lambda.
MEMORY_HEADROOM_MB = 64
_MB = 1024 * 1024


def limit_memory(memory_mb: int) -> int:
    """Cap this process's data segment at ``memory_mb`` + headroom; returns the limit in bytes."""
    import resource

    limit = (memory_mb + MEMORY_HEADROOM_MB) * _MB
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return limit


def _out_of_memory(out: IO[bytes], request: dict[str, Any]) -> None:
    """Lambda kills a sandbox that runs out of memory: say so, then die the same way."""
    message = f"RequestId: {request.get('request_id')} Error: Runtime exited with error: signal: killed"
    error = {"errorType": "Runtime.OutOfMemory", "errorMessage": message, "stackTrace": []}
    try:
        _send(out, orjson.dumps({"id": request.get("id"), "error": error, "fatal": True}))
    finally:
        os.kill(os.getpid(), signal.SIGKILL)


def _send(out: IO[bytes], data: bytes) -> None:
    out.write(_HEADER.pack(len(data)))
    out.write(data)
    out.flush()


class _Frames:
    """The protocol input, read in large chunks: every complete frame already in the pipe is
    returned by one :meth:`read` (a batch), blocking only when none is complete."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = bytearray()

    def read(self) -> list[dict[str, Any]] | None:
        """The next batch of requests, or None at EOF."""
        while True:
            batch = self._complete()
            if batch:
                return batch
            chunk = os.read(self._fd, _READ_SIZE)
            if not chunk:
                return None
            self._buf += chunk

    def _complete(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        buf, pos = self._buf, 0
        while len(buf) - pos >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, pos)
            end = pos + _HEADER.size + size
            if end > len(buf):
                break
            batch.append(orjson.loads(memoryview(buf)[pos + _HEADER.size : end]))
            pos = end
        if pos:
            del buf[:pos]
        return batch


def _claim_protocol_pipes() -> tuple[int, int]:
    """Move the protocol off fds 0/1 before user code runs, so print() and input() cannot touch it.

    fd 1 becomes a copy of stderr (prints land in the function's log), fd 0 becomes /dev/null.
    ``os.dup`` fds are non-inheritable: the handler's own subprocesses never get the protocol.
    """
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return proto_in, proto_out


def _die_with_gateway(gateway_pid: int) -> None:
    """Linux: have the kernel SIGKILL this worker when the gateway dies, even mid-handler.

    Without it, a gateway killed with SIGKILL leaves a busy worker running until its handler
    returns (an idle one exits on EOF anyway). Best effort: other platforms rely on the EOF.
    """
    if sys.platform != "linux":
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != gateway_pid:  # the gateway died before prctl() took effect
        os._exit(1)


def _isolate_user_namespace(task_root: str, code_paths: list[str]) -> None:
    """Give user code Lambda's view: the task root, then requirements and layers, then the
    interpreter's packages; this runtime's folder last; no ``routes`` package of ours in the way."""
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR", "")
    first = [task_root, *code_paths]
    rest = [p for p in sys.path if p not in first and p != runtime_dir]
    sys.path[:] = [*first, *rest, *([runtime_dir] if runtime_dir else [])]
    for name in [n for n in sys.modules if n == "routes" or n.startswith("routes.")]:
        del sys.modules[name]  # this module keeps its own references; a user ``routes`` can now load


class _RequestId:
    """The invocation being served, for log records (Lambda's ``LambdaLoggerFilter``)."""

    current = ""

    @classmethod
    def filter(cls, record: Any) -> bool:
        record.aws_request_id = cls.current
        return True


def _setup_logging() -> None:
    """The root logger as Lambda's Python runtime sets it up, before the handler is imported: one
    handler, Lambda's text format (UTC), level left at Python's default (WARNING) until the
    function sets it, so ``logging.info`` prints only after ``setLevel(logging.INFO)``, as there."""
    import logging
    import time

    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.addFilter(_RequestId.filter)
    logging.getLogger().addHandler(handler)


def _log_error(payload: dict[str, Any]) -> None:
    """Lambda logs every unhandled error with its traceback (the function's log, not the reply)."""
    sys.stderr.write("\n".join(error_log_lines(payload)) + "\n")
    sys.stderr.flush()


class _Runtime:
    """The warm state of this sandbox: the handler, its settings and (lazily) an event loop."""

    def __init__(self, handler: Callable[..., Any], account_id: str) -> None:
        env = os.environ
        self.handler = handler
        self.account_id = account_id
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.memory_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
        self.region = env.get("AWS_REGION", "us-east-1")
        self.log_stream = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        # One loop for the worker's lifetime, so clients an async handler caches in module globals
        # (bound to their loop) keep working across invocations.
        self.runner: Any = None

    def invoke(self, request: dict[str, Any]) -> bytes:
        context = LambdaContext(
            aws_request_id=request["request_id"],
            function_name=self.function_name,
            memory_limit_in_mb=self.memory_mb,
            region=self.region,
            account_id=self.account_id,
            deadline_ms=request["deadline_ms"],
            log_stream_name=self.log_stream,
        )
        _RequestId.current = request["request_id"]
        try:
            result = self.handler(request["event"], context)
            if inspect.iscoroutine(result):
                if self.runner is None:
                    import asyncio  # only workers with async handlers pay for it

                    self.runner = asyncio.Runner()
                result = self.runner.run(result)
            reply = {"id": request["id"], "ok": result}
        except MemoryError:
            raise  # the sandbox is out of memory: main() ends it
        except Exception as exc:  # not BaseException: SystemExit ends the worker, as on Lambda
            reply = {"id": request["id"], "error": error_payload(exc)}
            _log_error(reply["error"])
        try:
            return dumps(reply)
        except MarshalError as exc:
            error = {"errorType": exc.error_type, "errorMessage": exc.error_message, "stackTrace": []}
            _log_error(error)
            return orjson.dumps({"id": request["id"], "error": error})


def _load_entry() -> Callable[..., Any]:
    """The handler; for a serverless-wsgi function (``custom.wsgi.app``), the plugin's
    ``wsgi_handler.handler`` around the imported app (:mod:`routes.integrations.wsgi_adapter`)."""
    wsgi = wsgi_adapter.handler_from_environment(os.environ, os.environ["LAMBDA_TASK_ROOT"])
    return wsgi if wsgi is not None else load_handler(os.environ["_HANDLER"])


def main(argv: list[str]) -> int:
    proto_in, proto_out = _claim_protocol_pipes()
    # Ctrl-C in the gateway's terminal reaches the whole process group; the gateway stops us itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_gateway(int(argv[2]) if len(argv) > 2 else os.getppid())
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # fd 1 is a pipe now: flush prints per line
    limit_memory(int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")))
    _isolate_user_namespace(os.environ["LAMBDA_TASK_ROOT"], argv[3:])
    _setup_logging()
    frames = _Frames(proto_in)
    with open(proto_out, "wb") as out:
        try:
            runtime = _Runtime(_load_entry(), argv[1] if len(argv) > 1 else "")
        except HandlerLoadError as exc:
            _log_error(exc.payload)
            _send(out, orjson.dumps({"init_error": exc.payload}))
            return 0
        _send(out, orjson.dumps({"ready": os.getpid()}))
        try:
            while (batch := frames.read()) is not None:
                for request in batch:
                    try:
                        data = runtime.invoke(request)
                    except MemoryError:
                        _out_of_memory(out, request)
                    sys.stdout.flush()  # the handler's output is logged before its reply is seen
                    _send(out, data)
        finally:
            if runtime.runner is not None:
                runtime.runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

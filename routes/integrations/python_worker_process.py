"""One worker child process of a Python function, seen from the gateway.

:class:`WorkerProcess` owns the child's pipes: it frames requests and replies (4-byte big-endian
length + orjson, see :mod:`routes.integrations._worker_main`), logs the child's output lines to the
function's logger, names the way it died (Lambda's ``Runtime.ExitError`` wording) and stops it
without leaving a zombie or an open transport. The pool policy lives in
:mod:`routes.integrations.python_workers`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from routes.integrations.lambda_context import MAX_RESPONSE_BYTES, new_log_stream_name
from routes.integrations.lambda_env import lambda_environment
from routes.integrations.python_deps import WorkerCode

__all__ = [
    "FRAME_HEADER",
    "TLS_TRUST_VARIABLE",
    "WorkerGone",
    "WorkerProcess",
    "function_env",
    "tls_trust_environment",
]

_HEADER = FRAME_HEADER = struct.Struct(">I")
_MAX_FRAME = MAX_RESPONSE_BYTES + 64 * 1024  # the child enforces the 6 MB limit; this guards the pipe
_REPO_ROOT = str(Path(__file__).resolve().parents[2])


class WorkerGone(Exception):
    """The worker cannot be used any more (exited, or spoke garbage)."""


class WorkerProcess:
    """One child process and its pipes. Not reusable after any exception."""

    def __init__(self, proc: asyncio.subprocess.Process, log: logging.Logger) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._log_task = asyncio.create_task(_log_lines(proc.stderr, log, proc.pid))
        self._stopping: asyncio.Task[None] | None = None
        self._reading = False
        self._buf = bytearray()  # bytes read from the child, not yet a whole frame
        self._frames: collections.deque[dict[str, Any]] = collections.deque()  # decoded, not yet taken
        self._signalled: signal.Signals | None = None
        self.ready = False  # set by the pool once the child said it loaded the handler

    @classmethod
    async def launch(
        cls, env: Mapping[str, str], code_dir: str, account_id: str, log: logging.Logger, code: WorkerCode
    ) -> WorkerProcess:
        """Start a child (``env`` from :func:`function_env`); it answers ``ready`` or ``init_error``."""
        proc = await asyncio.create_subprocess_exec(
            code.executable,
            "-P",  # no cwd on sys.path: a user package named ``routes`` must not shadow ours
            "-m",
            "routes.integrations._worker_main",
            account_id,
            str(os.getpid()),
            *code.paths,  # after the task root on the child's sys.path: requirements, layers
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=code_dir,
            env={**env, "AWS_LAMBDA_LOG_STREAM_NAME": new_log_stream_name()},  # one per sandbox
        )
        return cls(proc, log)

    async def send(self, data: bytes) -> None:
        try:
            self._stdin.writelines((_HEADER.pack(len(data)), data))
            await self._stdin.drain()
        except (ConnectionError, RuntimeError) as exc:  # RuntimeError: transport already closed
            raise WorkerGone(await self.exit_reason()) from exc

    async def send_raw(self, frames: bytes) -> None:
        """Write frames already prefixed with :data:`FRAME_HEADER` (a batch) in one write."""
        try:
            self._stdin.write(frames)
            await self._stdin.drain()
        except (ConnectionError, RuntimeError) as exc:  # RuntimeError: transport already closed
            raise WorkerGone(await self.exit_reason()) from exc

    async def receive(self) -> dict[str, Any]:
        """The next frame. Frames already read come without a trip through the event loop: the
        replies to a batch usually arrive in one read."""
        while not self._frames:
            await self._read_frames()
        return self._frames.popleft()

    async def _read_frames(self) -> None:
        self._reading = True
        try:
            chunk = await self._stdout.read(1 << 20)
        finally:
            self._reading = False
        if not chunk:
            raise WorkerGone(await self.exit_reason())
        buf = self._buf
        buf += chunk
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, pos)
            if size > _MAX_FRAME:
                raise WorkerGone(f"worker sent a {size}-byte frame")
            end = pos + _HEADER.size + size
            if end > len(buf):
                break
            try:
                frame = orjson.loads(memoryview(buf)[pos + _HEADER.size : end])
            except orjson.JSONDecodeError as exc:
                raise WorkerGone(f"worker sent an undecodable frame: {exc}") from None
            if not isinstance(frame, dict):
                raise WorkerGone("worker sent a frame that is not an object")
            self._frames.append(frame)
            pos = end
        del buf[:pos]

    async def exit_reason(self) -> str:
        """Lambda's wording for a dead runtime; waits briefly for the exit status after EOF."""
        try:
            code = await asyncio.wait_for(self.proc.wait(), 2.0)
        except TimeoutError:
            return "Runtime.ExitError: Runtime closed its output but did not exit"
        if code < 0:
            # Lambda's wording is Go's: "signal: killed", "signal: segmentation fault".
            how = f"signal: {(signal.strsignal(-code) or str(-code)).lower()}"
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


# Set by `portway serve --tls self-signed` (server/local_tls.py): a CA bundle that also trusts the
# gateway's own certificate.
TLS_TRUST_VARIABLE = "PORTWAY_TLS_TRUST"


def tls_trust_environment() -> dict[str, str]:
    """Handlers call ``https://{domainName}/{stage}`` (``@connections``) on a gateway serving a local
    certificate: point boto3 (``AWS_CA_BUNDLE``), Python's ``ssl`` (``SSL_CERT_FILE``) and requests
    (``REQUESTS_CA_BUNDLE``) at a bundle that trusts it. A function's own environment still wins."""
    bundle = os.environ.get(TLS_TRUST_VARIABLE)
    if not bundle:
        return {}
    return {"AWS_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle}


def function_env(
    handler: str,
    code_dir: str,
    name: str,
    region: str,
    memory_mb: int,
    environment: Mapping[str, str] | None,
    pass_env: Iterable[str] = (),
    code: WorkerCode | None = None,
) -> dict[str, str]:
    """Lambda's environment for this function's workers (:mod:`routes.integrations.lambda_env`)."""
    return lambda_environment(
        os.environ,
        handler=handler,
        task_root=code_dir,
        runtime_dir=_REPO_ROOT,
        python_path=code.paths if code is not None else (),
        python_version=code.version if code is not None else None,
        name=name,
        region=region,
        memory_mb=memory_mb,
        # The function's own environment still wins over the local-TLS trust variables.
        environment={**tls_trust_environment(), **(environment or {})},
        pass_env=pass_env,
    )

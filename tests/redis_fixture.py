"""pytest plugin: real ``redis-server`` processes for tests (loaded from tests/conftest.py).

Fixtures:

* ``redis_url`` (session): one shared server, ``redis://127.0.0.1:PORT/0``.
* ``clean_redis_url`` (function): the same URL after FLUSHALL, for tests that need an empty db.
* ``redis_server`` (function): a private :class:`RedisServer` a test may stop and restart (on the
  same port) without disturbing other tests.

A missing ``redis-server`` binary fails the test with a clear message: the Redis half of the
store contract is the point of these tests, so silently skipping it would hide regressions.
The readiness check speaks RESP over a plain socket, so this plugin does not depend on the
client library under test.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pytest

__all__ = [
    "RedisReplyError",
    "RedisServer",
    "RedisServerError",
    "RespValue",
    "clean_redis_url",
    "free_port",
    "redis_server",
    "redis_url",
    "resp_command",
]

HOST = "127.0.0.1"
_MISSING = (
    "redis-server not found on PATH (set REDIS_SERVER to its path, or install it: "
    "apt-get install redis-server). The Redis store tests need a real server; they are not skipped."
)


class RedisServerError(RuntimeError):
    """The server could not be started (missing binary, crashed, never became ready)."""


class RedisReplyError(RuntimeError):
    """Redis answered with an error reply (``-ERR ...``)."""


def free_port() -> int:
    """A port that was free a moment ago (the OS picks it; the caller must handle a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


RespValue = bytes | int | None | list["RespValue"]


def _read_reply(reply: IO[bytes]) -> RespValue:
    line = reply.readline()
    kind, body = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return body
    if kind == b":":
        return int(body)
    if kind == b"-":
        raise RedisReplyError(body.decode(errors="replace"))
    if kind == b"$":
        size = int(body)
        return None if size < 0 else reply.read(size + 2)[:-2]
    if kind == b"*":
        size = int(body)
        return None if size < 0 else [_read_reply(reply) for _ in range(size)]
    raise RedisReplyError(f"unexpected reply {line!r}")


def resp_command(port: int, *args: str | bytes, timeout: float = 1.0) -> RespValue:
    """Send one command over a fresh connection and return its RESP2 reply."""
    parts = [arg.encode() if isinstance(arg, str) else arg for arg in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection((HOST, port), timeout=timeout) as sock, sock.makefile("rb") as reply:
        sock.sendall(payload)
        return _read_reply(reply)


class RedisServer:
    """One ``redis-server`` child process, without persistence, bound to 127.0.0.1.

    The port is chosen on the first :meth:`start` (retrying if another process grabs it first)
    and kept afterwards, so :meth:`restart` brings the server back where clients expect it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        binary: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.extra_args = extra_args  # e.g. --cluster-enabled yes (tests/redis_cluster_fixture.py)
        self._port = port
        self._binary = binary or os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RedisServerError("server was never started: no port yet")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until this very process answers (polling, not sleeping blindly)."""
        if self.running:
            return
        if self._binary is None or not Path(self._binary).exists():
            raise RedisServerError(_MISSING)
        deadline = time.monotonic() + timeout
        pinned = self._port is not None
        while True:
            port = self._port if self._port is not None else free_port()
            if self._spawn_and_wait(port, deadline):
                self._port = port
                atexit.register(self.stop)
                return
            # Lost the race for the port. A fresh port if it was ours to choose; the same port
            # (until the deadline) when restarting, since clients are configured with it.
            if time.monotonic() >= deadline:
                raise RedisServerError(f"port {port} stayed in use; redis-server could not bind it")
            if pinned:
                time.sleep(0.05)

    def _spawn_and_wait(self, port: int, deadline: float) -> bool:
        log_path = self.directory / f"redis-{port}.log"
        self._log = log_path.open("ab")
        args = [str(self._binary), "--port", str(port), "--bind", HOST, "--daemonize", "no"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.directory), "--loglevel", "notice"]
        args += self.extra_args
        self._proc = proc = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.stop()
                text = log_path.read_text(errors="replace")
                if "Address already in use" in text:
                    return False
                raise RedisServerError(f"redis-server exited with {proc.returncode}:\n{text[-2000:]}")
            try:
                info = resp_command(port, "INFO", "server", timeout=0.5)
            except (OSError, RedisReplyError):  # not listening yet, or still loading
                time.sleep(0.01)
                continue
            # Make sure the server answering is ours, not another one that owns the port.
            if isinstance(info, bytes) and f"process_id:{proc.pid}\r\n".encode() in info:
                return True
            self.stop()
            return False
        self.stop()
        raise RedisServerError(f"redis-server on port {port} not ready in time; log: {log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate (SIGTERM, then SIGKILL after ``timeout``) and wait. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            atexit.unregister(self.stop)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again on the same port (all data is lost: no persistence)."""
        self.stop()
        self.start(timeout)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _started(server: RedisServer) -> RedisServer:
    try:
        server.start()
    except RedisServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server shared by the whole session (use ``clean_redis_url`` for an empty db)."""
    server = _started(RedisServer(tmp_path_factory.mktemp("redis")))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def clean_redis_url(redis_url: str) -> str:
    """``redis_url`` after FLUSHALL: every test starts from an empty server."""
    port = urlsplit(redis_url).port
    assert port is not None
    resp_command(port, "FLUSHALL")
    return redis_url


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private, running server the test may ``stop()``/``restart()`` on the same port."""
    server = _started(RedisServer(tmp_path))
    try:
        yield server
    finally:
        server.stop()

"""``portway serve --workers N``: N gateway processes sharing one port, under a small supervisor.

Every worker is a whole ``portway serve`` process (its own event loop, app and store client) that
binds the same address with ``SO_REUSEPORT``: the kernel spreads new connections over the
workers' listening sockets, so no process passes connections to another. The supervisor holds a
socket bound to that address (with ``SO_REUSEPORT``, never listening: it takes no connections) so
that ``--port 0`` resolves once and the port stays reserved while a worker restarts.

The supervisor itself runs no event loop and imports nothing of the gateway; it

* starts the workers and prints the banner once every one is listening (each worker writes one
  byte on its own socketpair when its site is started, and drains when the supervisor's end
  closes: a supervisor killed with SIGKILL leaves no worker behind);
* restarts a worker that dies (delay doubling from 0.5 s to 10 s while workers keep dying within
  10 s of their start, so a crash loop does not spin);
* on SIGTERM/SIGINT forwards SIGTERM to every worker (each drains as ``portway serve`` does:
  WebSocket clients get 1001 and ``$disconnect`` runs), waits for them, kills stragglers;
* on SIGHUP replaces the workers one at a time (start a new one, wait until it listens, then
  SIGTERM the old one): the port never stops accepting, and a new configuration is applied. The
  caller checks the configuration first (``check``), so an invalid one is refused and the old
  workers keep serving. Connections of a replaced worker are drained like on SIGTERM.

Workers share state only through the store: the CLI requires ``--redis-url`` for N > 1
(docs/operations.md, "All cores").
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["Supervisor", "WorkerSpec", "reserve_port"]

log = logging.getLogger("portway.supervisor")

_TICK_S = 0.1  # how often the loop looks at its flags and children (signals interrupt the wait)
_RESTART_MIN_S = 0.5
_RESTART_MAX_S = 10.0
_QUICK_DEATH_S = 10.0
_KILL_MARGIN_S = 10.0  # beyond a worker's own drain + close bound


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening): the port the
    workers share, resolved once when ``port`` is 0. OSError if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """How to start worker ``index``: its argv, given the write end of its readiness pipe."""

    argv: Callable[[int, int], Sequence[str]]
    count: int
    start_timeout_s: float  # handler dependencies may be installed before a worker listens
    stop_timeout_s: float  # a worker's drain plus its resources' bounded closes


@dataclass(slots=True)
class _Worker:
    index: int
    proc: subprocess.Popen[bytes]
    line: socket.socket | None  # one byte arrives when the worker listens; closed: see _spawn
    started: float
    ready: bool = False


@dataclass(slots=True)
class _Flags:
    stop: bool = False
    reload: bool = False
    signals: list[int] = field(default_factory=list)


class Supervisor:
    """Runs :class:`WorkerSpec` workers until SIGTERM/SIGINT (see the module docstring)."""

    def __init__(self, spec: WorkerSpec, *, check: Callable[[], bool] = lambda: True) -> None:
        self._spec = spec
        self._check = check
        self._workers: dict[int, _Worker] = {}
        self._failures: dict[int, int] = {}
        self._restart_at: dict[int, float] = {}
        self._flags = _Flags()

    # -- signals ------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._flags.reload = True
        else:
            self._flags.stop = True

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    # -- workers ------------------------------------------------------------------------------

    def _spawn(self, index: int) -> _Worker:
        # One end each: the worker writes one byte when it listens, and stops (drains) when
        # it reads EOF, i.e. when this process is gone, even by SIGKILL: no orphaned workers.
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                list(self._spec.argv(index, theirs.fileno())),
                pass_fds=(theirs.fileno(),),
                env={**os.environ, "PORTWAY_WORKER": str(index)},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        log.info("worker %d started (pid %d)", index, proc.pid)
        return _Worker(index, proc, ours, time.monotonic())

    def _wait_ready(self, workers: Sequence[_Worker]) -> bool:
        """True once every worker listens; False if one exits first, is not ready in time, or a
        stop is asked."""
        deadline = time.monotonic() + self._spec.start_timeout_s
        pending = {w.line.fileno(): w for w in workers if not w.ready and w.line is not None}
        while pending and not self._flags.stop:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error(
                    "worker(s) %s not listening after %.0f s",
                    sorted(w.index for w in pending.values()),
                    self._spec.start_timeout_s,
                )
                return False
            readable, _, _ = select.select(list(pending), [], [], min(left, _TICK_S))
            for fd in readable:
                worker = pending.pop(fd)
                worker.ready = _read_ready(worker)
                if not worker.ready:  # EOF: the worker exited (or closed its pipe) before listening
                    return False
            for worker in pending.values():
                if worker.proc.poll() is not None:
                    return False
        return not pending

    def _close(self, worker: _Worker) -> None:
        if worker.line is not None:
            worker.line.close()
            worker.line = None

    def _terminate(self, workers: Sequence[_Worker]) -> None:
        """SIGTERM, wait (bounded) for the drains, then SIGKILL any straggler."""
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._spec.stop_timeout_s + _KILL_MARGIN_S
        for worker in workers:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d (pid %d) did not stop in time: killed", worker.index, worker.proc.pid)
                worker.proc.kill()
                worker.proc.wait()
            self._close(worker)

    def start(self) -> bool:
        """Start every worker; True once all listen (else they are stopped again)."""
        workers = [self._spawn(i) for i in range(self._spec.count)]
        self._workers = {w.index: w for w in workers}
        if self._wait_ready(workers):
            return True
        self._terminate(workers)
        return False

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers.values()]

    def run(self) -> None:
        """Supervise until asked to stop, then drain every worker."""
        try:
            while not self._flags.stop:
                if self._flags.reload:
                    self._flags.reload = False
                    self._reload()
                self._reap()
                time.sleep(_TICK_S)
        finally:
            self._terminate(list(self._workers.values()))

    def _reap(self) -> None:
        now = time.monotonic()
        for index, worker in list(self._workers.items()):
            code = worker.proc.poll()
            if code is None:
                if not worker.ready and worker.line is not None and _readable(worker.line):
                    worker.ready = _read_ready(worker)
                    if worker.ready:
                        log.info("worker %d (pid %d) listening", index, worker.proc.pid)
                continue
            if index not in self._restart_at:
                quick = now - worker.started < _QUICK_DEATH_S
                failures = self._failures.get(index, 0) + 1 if quick else 0
                self._failures[index] = failures
                delay = min(_RESTART_MIN_S * (2**failures), _RESTART_MAX_S) if failures else 0.0
                log.warning(
                    "worker %d (pid %d) exited with %s: restarting in %.1f s",
                    index,
                    worker.proc.pid,
                    _describe(code),
                    delay,
                )
                self._restart_at[index] = now + delay
                self._close(worker)
            if now >= self._restart_at[index]:
                del self._restart_at[index]
                self._workers[index] = self._spawn(index)

    def _reload(self) -> None:
        if not self._check():
            log.error(
                "SIGHUP: the new configuration is invalid (above); the workers keep serving the old one"
            )
            return
        log.info("SIGHUP: replacing %d worker(s) one at a time", len(self._workers))
        for index in sorted(self._workers):
            if self._flags.stop:
                return
            old = self._workers[index]
            new = self._spawn(index)
            if not self._wait_ready([new]):
                log.error("SIGHUP: the new worker %d did not start; the old one keeps serving", index)
                self._terminate([new])
                return
            self._workers[index] = new
            self._terminate([old])
        log.info("SIGHUP: every worker replaced")


def _readable(line: socket.socket) -> bool:
    try:
        return bool(select.select([line], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _read_ready(worker: _Worker) -> bool:
    """The worker's byte (True), or EOF: it exited before listening (False)."""
    assert worker.line is not None
    try:
        return bool(worker.line.recv(1))
    except OSError:
        return False


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"

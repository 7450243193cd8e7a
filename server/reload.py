"""``portway serve --reload``: restart a function's workers when its code changes.

Polls the modification times of the ``*.py`` files under each worker-pool function's task root
(and the definition file) every ``interval_s``: no new dependency, and a bounded cost (one
``os.scandir`` walk per poll, in a thread so the event loop never waits on the disk). A function
whose files changed is reloaded (:meth:`WorkerPoolInvoker.reload`: fresh workers for later calls,
calls in flight finish on the old ones; WebSocket connections are the gateway's, untouched). New
code that fails its init is reported and the old workers keep serving. A changed definition is
re-validated and a restart is asked for: routes are not swapped in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from routes.integrations.base import InvokeFailure
from routes.integrations.python_workers import WorkerPoolInvoker
from server.config.errors import ConfigError
from server.config.load import load_config

__all__ = ["Snapshot", "changed_files", "drop_bytecode", "owners", "scan", "watch"]

log = logging.getLogger("portway.reload")

Snapshot = dict[str, tuple[int, int]]  # path -> (mtime_ns, size)

_SKIP_DIRS = frozenset({"__pycache__", ".git", ".venv", "node_modules", ".serverless"})
_MAX_FILES = 20_000  # a task root that is a whole home directory must not stall the poll


def changed_files(before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]) -> set[str]:
    """Files added, removed or modified between two snapshots."""
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


def owners(changed: Iterable[str], roots: Iterable[str]) -> set[str]:
    """The task roots that hold one of the changed files."""
    found = set()
    for root in roots:
        prefix = root.rstrip(os.sep) + os.sep
        if any(path.startswith(prefix) for path in changed):
            found.add(root)
    return found


def scan(roots: Iterable[str], extra: Iterable[Path] = ()) -> Snapshot:
    """``(mtime_ns, size)`` of every ``*.py`` under ``roots``, and of the ``extra`` files (blocking)."""
    snapshot: Snapshot = {}
    stack = list(dict.fromkeys(roots))
    while stack and len(snapshot) < _MAX_FILES:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in _SKIP_DIRS:
                        stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    stat = entry.stat()
                    snapshot[entry.path] = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                continue
    for path in extra:
        try:
            stat = path.stat()
        except OSError:
            continue
        snapshot[str(path)] = (stat.st_mtime_ns, stat.st_size)
    return snapshot


def drop_bytecode(changed: Iterable[str]) -> None:
    """Delete the cached bytecode of the changed modules (blocking). A ``.pyc`` is checked against
    its source's mtime in whole seconds and its size: an edit of the same length saved in the same
    second as the last compile would otherwise run the old code."""
    for path in changed:
        source = Path(path)
        if source.suffix != ".py":
            continue
        for cached in (source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"):
            with contextlib.suppress(OSError):
                cached.unlink()


async def watch(
    pools: Callable[[], list[WorkerPoolInvoker]],
    config_path: Path,
    *,
    stage: str | None = None,
    bindings: Path | None = None,
    interval_s: float = 0.5,
) -> None:
    """Poll until cancelled; reload the pools whose code changed."""
    config_file = config_path
    roots = sorted({pool.code_dir for pool in pools()})
    before = await asyncio.to_thread(scan, roots, [config_file])
    while True:
        await asyncio.sleep(interval_s)
        current = pools()
        roots = sorted({pool.code_dir for pool in current})
        after = await asyncio.to_thread(scan, roots, [config_file])
        changed = changed_files(before, after)
        before = after
        if not changed:
            continue
        if str(config_file) in changed:
            await _check_config(config_file, stage, bindings)
        await asyncio.to_thread(drop_bytecode, changed)
        touched = owners({path for path in changed if path.endswith(".py")}, roots)
        # All at once: the functions of one task root start their new workers side by side.
        await asyncio.gather(*(_reload(pool) for pool in current if pool.code_dir in touched))


async def _reload(pool: WorkerPoolInvoker) -> None:
    started = time.monotonic()
    try:
        await pool.reload()
    except InvokeFailure as exc:
        log.error(
            "function %s: the new code failed to load, the old workers keep serving: %s", pool.name, exc
        )
    except TimeoutError:
        log.error("function %s: new code's init did not finish, old workers keep serving", pool.name)
    else:
        log.info(
            "function %s: reloaded (new worker ready in %.0f ms)",
            pool.name,
            (time.monotonic() - started) * 1000,
        )


async def _check_config(path: Path, stage: str | None, bindings: Path | None) -> None:
    try:
        await asyncio.to_thread(load_config, path, stage=stage, bindings=bindings)
    except ConfigError as exc:
        for issue in exc.issues:
            where = f"{issue.location}: " if issue.location else ""
            log.error("%s: %s%s", path, where, issue.message)
        log.error(
            "%s changed: %d error(s); still serving the definition loaded at start", path, len(exc.issues)
        )
    else:
        log.warning("%s changed and is valid: restart portway to serve its routes", path)

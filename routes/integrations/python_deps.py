"""Where a worker's imports come from: its interpreter, its requirements, its layers.

On Lambda a Python function imports, in this order: its deployment package (the task root, into
which serverless-python-requirements installs ``requirements.txt``), its layers (``/opt/python``
and ``/opt/python/lib/pythonX.Y/site-packages``), then the runtime's own packages. Portway
reproduces that for ``isolation: process`` functions:

* **Interpreter**: the function's ``runtime`` (``python3.12``) when that interpreter is installed
  (``shutil.which``), else the gateway's, with a warning. The gateway's interpreter also serves a
  runtime naming its own version, and (with a warning) one older than the worker supports
  (``python3.9``: the worker needs 3.11+).
* **Requirements**: installed once per (file content, interpreter version) with
  ``<interpreter> -m pip install --target`` (what the plugin itself runs) into
  ``<cache>/requirements/<hash>``, where ``<cache>`` is ``$PORTWAY_CACHE_DIR`` or ``.portway``
  beside the config. pip's output is logged line by line; the folder is renamed into place only
  once pip succeeded, so an interrupted build is never reused. This happens when the gateway
  starts, before it serves, never on a request. A foreign interpreter also gets ``orjson`` there
  (the worker's protocol needs it; the gateway's own copy is built for another Python).
* **Layers**: each local layer's ``python/`` and ``python/lib/pythonX.Y/site-packages``.

The result is the worker's ``sys.path`` after its task root (:class:`WorkerCode`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from server.config.model import IntegrationConfig

__all__ = [
    "CodeKey",
    "DependencyError",
    "WorkerCode",
    "cache_dir",
    "code_key",
    "interpreter_for",
    "prepare_dependencies",
    "worker_code",
]

log = logging.getLogger("portway.deps")

_GATEWAY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
_PIP_TIMEOUT_S = 900.0
_OLDEST_WORKER = (3, 11)  # the worker uses python -P and asyncio.Runner


class DependencyError(Exception):
    """A function's requirements could not be installed: the gateway does not start."""


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerCode:
    """How to start a function's workers: the interpreter, and ``sys.path`` after the task root."""

    executable: str
    version: str  # "3.11"
    paths: tuple[str, ...] = ()


def cache_dir(config_source: Path | None) -> Path:
    """``$PORTWAY_CACHE_DIR``, else ``.portway`` beside the config (the working directory without one)."""
    configured = os.environ.get("PORTWAY_CACHE_DIR")
    if configured:
        return Path(configured)
    return (config_source.parent if config_source is not None else Path.cwd()) / ".portway"


def interpreter_for(runtime: str | None, function_name: str) -> tuple[str, str]:
    """(executable, ``X.Y``) for a function's ``runtime``; warns and uses the gateway's if absent."""
    if runtime is None or not runtime.startswith("python"):
        return sys.executable, _GATEWAY_VERSION
    version = runtime.removeprefix("python")
    if version == _GATEWAY_VERSION:
        return sys.executable, _GATEWAY_VERSION
    try:
        too_old = tuple(int(part) for part in version.split(".")) < _OLDEST_WORKER
    except ValueError:
        too_old = False
    if too_old:
        log.warning(
            "%s: runtime %s is older than Portway's worker supports (Python %d.%d+): running it with the "
            "gateway's Python %s instead",
            function_name,
            runtime,
            *_OLDEST_WORKER,
            _GATEWAY_VERSION,
        )
        return sys.executable, _GATEWAY_VERSION
    found = shutil.which(runtime)
    if found is None:
        log.warning(
            "%s: runtime %s is not installed here (no %r on PATH): running it with the gateway's "
            "Python %s instead",
            function_name,
            runtime,
            runtime,
            _GATEWAY_VERSION,
        )
        return sys.executable, _GATEWAY_VERSION
    return found, version


def _layer_paths(layers: Iterable[Path], version: str) -> list[str]:
    paths: list[str] = []
    for layer in layers:  # Lambda: /opt/python/lib/pythonX.Y/site-packages, then /opt/python
        paths += [str(layer / "python" / "lib" / f"python{version}" / "site-packages"), str(layer / "python")]
    return paths


CodeKey = tuple[str | None, tuple[Path, ...], Path | None]


def code_key(config: IntegrationConfig) -> CodeKey:
    """What decides a function's :class:`WorkerCode`: runtime, layers, requirements."""
    return (config.runtime, config.layers, config.requirements)


def worker_code(config: IntegrationConfig) -> WorkerCode:
    """A function's code when nothing was prepared: the gateway's interpreter, and its layers."""
    return WorkerCode(sys.executable, _GATEWAY_VERSION, tuple(_layer_paths(config.layers, _GATEWAY_VERSION)))


async def prepare_dependencies(
    configs: Iterable[IntegrationConfig], cache: Path
) -> dict[CodeKey, WorkerCode]:
    """Install what every function needs (each requirements set once) and say how to run it."""
    prepared: dict[CodeKey, WorkerCode] = {}
    built: dict[tuple[str, str, Path | None], str | None] = {}
    for config in configs:
        key = code_key(config)
        if key in prepared:
            continue
        name = config.function_name or config.handler or "function"
        executable, version = interpreter_for(config.runtime, name)
        foreign = executable != sys.executable
        build_key = (executable, version, config.requirements)
        if build_key not in built:
            needed = config.requirements is not None or foreign
            built[build_key] = (
                await _install(executable, version, config.requirements, foreign, cache, name)
                if needed
                else None
            )
        target = built[build_key]
        paths = ([target] if target else []) + _layer_paths(config.layers, version)
        prepared[key] = WorkerCode(executable, version, tuple(paths))
    return prepared


async def _install(
    executable: str, version: str, requirements: Path | None, foreign: bool, cache: Path, name: str
) -> str:
    extra = [f"orjson=={importlib.metadata.version('orjson')}"] if foreign else []
    # File system work in a thread: nothing blocks the event loop, even at start-up.
    target = await asyncio.to_thread(_target_for, version, extra, requirements, cache, name)
    if await asyncio.to_thread(target.is_dir):
        log.info("%s: requirements already installed in %s", name, target)
        return str(target)
    source = requirements.name if requirements is not None else "the worker's own packages"
    log.info("%s: installing %s for Python %s into %s (once per content)", name, source, version, target)
    try:
        building = await asyncio.to_thread(
            _fresh_dir, target.with_name(f"{target.name}.building-{os.getpid()}")
        )
    except OSError as exc:  # e.g. the config's folder is read-only (a container mount)
        raise DependencyError(f"{name}: cannot write the cache ({exc}); set PORTWAY_CACHE_DIR") from None
    command = [executable, "-m", "pip", "install", "--disable-pip-version-check", "--target", str(building)]
    command += ["-r", str(requirements)] if requirements is not None else []
    try:
        await _run_pip([*command, *extra], cwd=requirements.parent if requirements else cache, name=name)
        await asyncio.to_thread(_move_into_place, building, target)
    finally:
        await asyncio.to_thread(shutil.rmtree, building, True)
    log.info("%s: requirements installed", name)
    return str(target)


def _target_for(version: str, extra: list[str], requirements: Path | None, cache: Path, name: str) -> Path:
    """``<cache>/requirements/<hash of the interpreter version, extras and the file's content>``."""
    digest = hashlib.sha256(f"python{version}\n{' '.join(extra)}\n".encode())
    if requirements is not None:
        try:
            digest.update(requirements.read_bytes())
        except OSError as exc:
            raise DependencyError(f"{name}: cannot read {requirements}: {exc}") from None
    return cache / "requirements" / digest.hexdigest()[:24]


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _move_into_place(building: Path, target: Path) -> None:
    """Atomic: a folder under its final name is always complete."""
    try:
        building.rename(target)
    except OSError:  # another gateway process finished the same set first: use theirs
        if not target.is_dir():
            raise


async def _run_pip(command: list[str], *, cwd: Path, name: str) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        raise DependencyError(f"{name}: cannot run pip: {exc}") from None
    assert proc.stdout is not None
    tail: list[str] = []
    try:
        async with asyncio.timeout(_PIP_TIMEOUT_S):
            while line := await proc.stdout.readline():
                text = line.decode(errors="replace").rstrip()
                tail = [*tail[-19:], text]
                log.info("%s: pip: %s", name, text)
            code = await proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if code != 0:
        raise DependencyError(f"{name}: pip failed (exit status {code}): {' | '.join(tail[-5:])}")

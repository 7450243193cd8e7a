"""Config checks for functions of other runtimes (served through the Lambda Runtime API).

A ``provided.*`` function needs an executable ``bootstrap`` in its task root, a ``nodejs*`` one a
``node`` on PATH: without them the config fails to load (an error now, not a 502 at the first call).
"""

from __future__ import annotations

from pathlib import Path

from routes.integrations.runtime_api import RuntimeUnavailable, runtime_command, uses_runtime_api
from server.config.errors import Issues, loc

__all__ = ["runtime_api_handler", "uses_runtime_api"]

_NODE_EXTENSIONS = (".js", ".mjs", ".cjs")


def runtime_api_handler(
    runtime: str | None, handler: str, task_root: Path, location: str, issues: Issues
) -> str | None:
    """The handler string handed to the runtime as ``_HANDLER`` (unchanged), or None on an error."""
    assert runtime is not None
    try:
        runtime_command(runtime, task_root)
    except RuntimeUnavailable as exc:
        issues.error(loc(location, "runtime"), str(exc))
        return None
    if runtime.startswith("nodejs"):
        module, dot, _ = handler.rpartition(".")
        if not dot or not module:
            issues.error(
                loc(location, "handler"), f"handler {handler!r} is not file.function (index.handler)"
            )
            return None
        if not any((task_root / f"{module}{ext}").is_file() for ext in _NODE_EXTENSIONS):
            issues.warn(loc(location, "handler"), f"handler module {module!r} not found in {task_root}")
    return handler

"""Where a serverless function's code and dependencies come from, as Lambda would see them.

* **Task root** (``LAMBDA_TASK_ROOT``, ``sys.path[0]``, cwd): the folder of ``serverless.yml`` (the
  root of the zip serverless deploys), or ``<root>/<module>`` for a function with the
  serverless-python-requirements ``module`` setting (that folder is then the zip's root).
  ``handler: todos/list.list`` is the module ``todos.list`` imported from the task root.
* **Requirements** (serverless-python-requirements, when listed in ``plugins``): the
  ``requirements.txt`` (``custom.pythonRequirements.fileName``) of the function's ``module``
  folder, else of the service root. The plugin installs it into the zip; Portway installs it
  once per file content before serving (:mod:`routes.integrations.python_deps`).
* **Layers** with a local ``path`` (the top-level ``layers:`` section), referenced by
  ``{Ref: <Name>LambdaLayer}`` or by name from the function's (else the provider's) ``layers``:
  their ``python/`` folder is on ``sys.path`` as Lambda's ``/opt/python`` is. Layer ARNs cannot
  be fetched locally: a warning.
* **Runtime**: the function's (else the provider's) ``runtime``, e.g. ``python3.12``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from server.config.errors import Issues, loc, loc_path
from server.config.serverless_events import Parts
from server.config.variables import Resolver

__all__ = ["REQUIREMENTS_PLUGIN", "FunctionCode", "check_requirements_plugin", "function_code"]

REQUIREMENTS_PLUGIN = "serverless-python-requirements"


@dataclasses.dataclass(frozen=True, slots=True)
class FunctionCode:
    task_root: Path
    runtime: str | None
    layers: tuple[Path, ...]
    requirements: Path | None


def function_code(r: Resolver, parts: Parts, base_dir: Path, issues: Issues) -> FunctionCode:
    location = loc_path(parts)
    module = r.get(*parts, "module")
    task_root = base_dir.resolve()
    if module not in (None, "", "."):
        if isinstance(module, str) and (base_dir / module).is_dir():
            task_root = (base_dir / module).resolve()
        else:
            issues.error(loc(location, "module"), f"module {module!r} is not a folder beside serverless.yml")
    runtime = r.get(*parts, "runtime") or r.get("provider", "runtime")
    return FunctionCode(
        task_root=task_root,
        runtime=str(runtime) if runtime is not None else None,
        layers=_layers(r, parts, base_dir, issues),
        requirements=_requirements(r, base_dir, task_root),
    )


def _plugins(r: Resolver) -> list[Any]:
    plugins = r.get_deep("plugins")
    if isinstance(plugins, dict):  # plugins: {localPath: ..., modules: [...]}
        plugins = plugins.get("modules")
    return plugins if isinstance(plugins, list) else []


def _requirements(r: Resolver, base_dir: Path, task_root: Path) -> Path | None:
    if REQUIREMENTS_PLUGIN not in _plugins(r):
        return None
    name = str(r.get("custom", "pythonRequirements", "fileName") or "requirements.txt")
    found = next((path for path in (task_root / name, base_dir / name) if path.is_file()), None)
    return found.resolve() if found is not None else None


def check_requirements_plugin(r: Resolver, base_dir: Path, issues: Issues) -> None:
    """Once per service: a requirements.txt the plugin would not package is not installed either."""
    if (base_dir / "requirements.txt").is_file() and REQUIREMENTS_PLUGIN not in _plugins(r):
        issues.warn(
            "plugins",
            f"requirements.txt is not installed: {REQUIREMENTS_PLUGIN} is not in `plugins` (AWS would "
            "not package it either); handlers import only what the gateway's interpreter has",
        )


def _layer_paths(r: Resolver, base_dir: Path, issues: Issues) -> dict[str, Path]:
    """Top-level ``layers:`` with a local ``path``, by name and by CloudFormation logical id."""
    layers = r.get("layers")
    found: dict[str, Path] = {}
    if not isinstance(layers, dict):
        return found
    for name in layers:
        path = r.get("layers", name, "path")
        if not isinstance(path, str):
            continue
        folder = (base_dir / path).resolve()
        if not folder.is_dir():
            issues.warn(loc_path(("layers", name, "path")), f"layer folder {folder} does not exist")
            continue
        found[str(name)] = found[_logical_id(str(name))] = folder
    return found


def _logical_id(name: str) -> str:
    """Serverless's ``{Ref: <Name>LambdaLayer}`` id: first letter upper-cased, ``-``/``_`` spelled."""
    normalized = name[:1].upper() + name[1:]
    return normalized.replace("-", "Dash").replace("_", "Underscore") + "LambdaLayer"


def _layers(r: Resolver, parts: Parts, base_dir: Path, issues: Issues) -> tuple[Path, ...]:
    where: Parts = (*parts, "layers")
    refs = r.get(*where)
    if refs is None:
        where = ("provider", "layers")
        refs = r.get(*where)
    if refs is None:
        return ()
    if not isinstance(refs, list):
        issues.error(loc_path(where), "layers must be a list")
        return ()
    local = _layer_paths(r, base_dir, issues)
    folders: list[Path] = []
    for index, ref in enumerate(refs):
        name = ref.get("Ref") if isinstance(ref, dict) and len(ref) == 1 else ref
        if isinstance(name, str) and name in local:
            folders.append(local[name])
        else:
            issues.warn(
                loc_path((*where, index)),
                f"layer {ref!r} is not a local layer of this service (only `layers:` with a `path` "
                "are available locally): left out",
            )
    return tuple(folders)

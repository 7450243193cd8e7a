"""Static checks of a Python handler's module: found, parses, defines the function.

Lambda imports ``module.function`` with ``importlib.import_module`` and then looks the function up
on the module; a missing file, a syntax error or a misspelt name only shows at the first request
(``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``). Portway reports them when it loads
the definition instead, without importing (running) user code: the module's file is read and
parsed with :mod:`ast`, and the function must be bound at module level (``def``, ``async def``, an
assignment such as ``handler = Mangum(app)``, an import), also inside a top-level ``if``/``try``.
A module that can bind names dynamically (``from x import *``, a module ``__getattr__``) passes.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from server.config.errors import Issues, suggestion

__all__ = ["check_handler_source", "module_file"]


def module_file(code_dir: Path, module: str) -> Path | None:
    """The file ``import module`` finds under ``code_dir`` (``a.b`` -> ``a/b.py`` or
    ``a/b/__init__.py``), or None."""
    relative = Path(*module.split("."))
    for candidate in (
        code_dir / relative.with_name(relative.name + ".py"),
        code_dir / relative / "__init__.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def check_handler_source(source: Path, function: str, shown: str, location: str, issues: Issues) -> None:
    """Warn when ``source`` (``shown`` in messages) cannot be parsed or does not define
    ``function`` at module level."""
    try:
        stat = source.stat()
        names = _module_names(source, stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        issues.warn(location, f"handler module {shown} cannot be read: {exc.strerror or exc}")
        return
    except SyntaxError as exc:
        issues.warn(
            location,
            f"handler module {shown} cannot be imported: line {exc.lineno}: {exc.msg} (SyntaxError)",
        )
        return
    except (UnicodeDecodeError, ValueError) as exc:
        issues.warn(location, f"handler module {shown} cannot be imported: {exc}")
        return
    if names is None or function in names:
        return
    public = sorted(name for name in names if not name.startswith("_"))
    issues.warn(
        location,
        f"function {function!r} is not defined in {shown}{suggestion(function, public, 'it defines')}",
    )


@functools.lru_cache(maxsize=256)
def _module_names(source: Path, mtime_ns: int, size: int) -> frozenset[str] | None:
    """Names bound at module level (None: the module may bind any name). ``mtime_ns`` and ``size``
    key the cache, so an edited file is parsed again."""
    del mtime_ns, size
    tree = ast.parse(source.read_bytes(), filename=str(source))
    names: set[str] = set()
    statements = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in _targets(targets))
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    names.update(target.id for target in _targets([item.optional_vars]))
            statements.extend(node.body)
        elif isinstance(node, ast.If | ast.While):
            statements.extend([*node.body, *node.orelse])
        elif isinstance(node, ast.Try | ast.TryStar):
            statements.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                statements.extend(handler.body)
        elif isinstance(node, ast.Expr) and _walrus_names(node.value):
            names.update(_walrus_names(node.value))
    return None if "__getattr__" in names else frozenset(names)


def _targets(targets: list[ast.expr]) -> list[ast.Name]:
    found: list[ast.Name] = []
    for target in targets:
        found.extend(node for node in ast.walk(target) if isinstance(node, ast.Name))
    return found


def _walrus_names(node: ast.expr) -> set[str]:
    return {
        item.target.id
        for item in ast.walk(node)
        if isinstance(item, ast.NamedExpr) and isinstance(item.target, ast.Name)
    }

"""The serverless-wsgi plugin's settings: which functions serve a WSGI app, and which app.

The plugin deploys a function whose handler is ``wsgi_handler.handler`` (``wsgi.handler`` is its
deprecated spelling, which it rewrites) with its own ``wsgi_handler.py`` that imports
``custom.wsgi.app`` (``module.app`` or ``folder/module.app``, relative to ``serverless.yml``).
Portway runs its own copy of that handler (:mod:`routes.integrations.wsgi_adapter`) in the
function's worker; the settings reach the worker through one private environment variable.
"""

from __future__ import annotations

import json
from pathlib import Path

from server.config.errors import Issues
from server.config.variables import Resolver

__all__ = ["WSGI_HANDLERS", "wsgi_environment"]

WSGI_HANDLERS = ("wsgi_handler.handler", "wsgi.handler")
_SETTINGS_VARIABLE = "_PORTWAY_WSGI"  # routes.integrations.wsgi_adapter.SETTINGS_VARIABLE (no import: layers)


def wsgi_environment(
    r: Resolver, handler: str, base_dir: Path, location: str, issues: Issues
) -> dict[str, str] | None:
    """``None`` unless ``handler`` (at ``location``) is the plugin's; else the variable carrying
    ``custom.wsgi`` (empty, with an error, when ``custom.wsgi.app`` is missing, as the plugin
    refuses to deploy)."""
    if handler not in WSGI_HANDLERS:
        return None
    if handler != WSGI_HANDLERS[0]:  # the plugin's own deprecation warning
        issues.warn(location, f'"{handler}" is deprecated by serverless-wsgi: use "{WSGI_HANDLERS[0]}"')
    app = r.get("custom", "wsgi", "app")
    if not isinstance(app, str) or "." not in app:
        issues.error(
            "custom.wsgi.app",
            "a wsgi_handler.handler function needs custom.wsgi.app: module.app (serverless-wsgi), "
            'e.g. "app.app" for the Flask app `app` in app.py',
        )
        return {}
    module_path = app.rpartition(".")[0]
    if not (base_dir / f"{module_path}.py").is_file() and not (base_dir / module_path).is_dir():
        issues.warn("custom.wsgi.app", f"WSGI app module {module_path!r} not found in {base_dir}")
    text_types = r.get_deep("custom", "wsgi", "textMimeTypes")
    settings = {
        "app": app,
        "textMimeTypes": [str(t) for t in text_types] if isinstance(text_types, list) else [],
    }
    return {_SETTINGS_VARIABLE: json.dumps(settings)}

"""The two spellings of a throttle-map key: Portway's route key and AWS's method-setting path.

AWS names a method ``"<resourcePath>/<METHOD>"`` in usage plans (``/pets/GET``; the root resource
is ``//GET``) and ``"<resourcePath without the leading slash>/<METHOD>"`` in stage
``methodSettings`` (``pets/GET``); Portway's records use :attr:`RouteConfig.route_key`
(``GET /pets``). WebSocket route keys (``$connect``, ``sendMessage``) and ``$default`` are the same
in both. One module for the config loaders and the admin API, so the spellings cannot drift.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from server.config.model import HTTP_METHODS

__all__ = ["METHODS", "is_route_key", "normalize", "to_aws"]

METHODS = frozenset((*HTTP_METHODS, "ANY"))


def normalize(key: str, *, websocket: bool = False) -> str:
    """``/pets/GET``, ``pets/GET`` and ``get  /pets`` give ``GET /pets``; ``//GET`` gives
    ``GET /``. Anything else is returned upper-cased and stripped as far as it parses; check the
    result with :func:`is_route_key` (or against the API's routes)."""
    key = key.strip()
    if websocket or key == "$default":
        return key
    if " " not in key and "/" in key:
        path, _, method = key.rpartition("/")
        if method.upper() in METHODS:
            return f"{method.upper()} /{path.strip('/')}"
    method, _, path = key.partition(" ")
    return f"{method.upper()} {path.strip()}"


def is_route_key(key: str) -> bool:
    """``METHOD /path`` with a known method (after :func:`normalize`)."""
    method, _, path = key.partition(" ")
    return method in METHODS and path.startswith("/")


def to_aws(key: str, *, websocket: bool = False) -> str:
    """AWS's form of a Portway route key: ``GET /pets`` -> ``/pets/GET``, ``GET /`` -> ``//GET``."""
    method, sep, path = key.partition(" ")
    if websocket or not sep or key == "$default":
        return key
    return f"{path.rstrip('/')}/{method}" if path != "/" else f"//{method}"

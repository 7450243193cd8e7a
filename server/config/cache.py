"""The stage cache's configuration, shared by the native format and serverless.yml (the
``serverless-api-gateway-caching`` plugin's settings are translated to these names first).

Native: a stage's ``cache: {enabled, ttl, requireAuthorization, unauthorizedStrategy}`` and a
route's ``cache: {enabled, ttl, keyParameters, requireAuthorization, unauthorizedStrategy}``
(docs/configuration.md, "Stage cache"). REST APIs only, as on AWS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from server.cache.keys import parameter_problem
from server.config.errors import Issues, loc
from server.config.model import (
    CACHE_TTL_DEFAULT,
    CACHE_TTL_MAX,
    ApiKind,
    CacheControlStrategy,
    CacheSettings,
    RouteCache,
)

__all__ = ["route_cache", "stage_cache"]

_STRATEGIES = ", ".join(strategy.value for strategy in CacheControlStrategy)


def _ttl(raw: Any, location: str, issues: Issues) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= CACHE_TTL_MAX:
        issues.error(location, f"ttl must be a whole number of seconds from 0 (off) to {CACHE_TTL_MAX}")
        return None
    return raw


def _strategy(raw: Any, location: str, issues: Issues) -> CacheControlStrategy | None:
    if raw is None:
        return None
    try:
        return CacheControlStrategy(str(raw))
    except ValueError:
        issues.error(location, f"unauthorizedStrategy must be one of {_STRATEGIES}")
        return None


def _rest_only(kind: ApiKind, location: str, issues: Issues) -> bool:
    if kind is not ApiKind.REST:
        issues.error(location, "the stage cache exists only in REST APIs (as on AWS)")
        return False
    return True


def stage_cache(raw: Any, kind: ApiKind, location: str, issues: Issues) -> CacheSettings | None:
    """A stage's ``cache`` object (None: no cache on that stage)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        issues.error(location, "cache must be an object: {enabled, ttl, ...}")
        return None
    if not _rest_only(kind, location, issues):
        return None
    ttl = _ttl(raw.get("ttl"), loc(location, "ttl"), issues)
    strategy = _strategy(raw.get("unauthorizedStrategy"), loc(location, "unauthorizedStrategy"), issues)
    settings = CacheSettings(
        enabled=bool(raw.get("enabled", True)),
        ttl_s=CACHE_TTL_DEFAULT if ttl is None else ttl,
        require_authorization=bool(raw.get("requireAuthorization", True)),
    )
    if strategy is not None:
        settings = CacheSettings(settings.enabled, settings.ttl_s, settings.require_authorization, strategy)
    return settings if settings.enabled else None


def route_cache(
    raw: Any, kind: ApiKind, path_parameters: Sequence[str], location: str, issues: Issues
) -> RouteCache | None:
    """A route's ``cache`` override; ``path_parameters``: the route path's names, which the
    ``method.request.path.*`` key parameters must be among."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        issues.error(location, "cache must be an object: {enabled, ttl, keyParameters, ...}")
        return None
    if not _rest_only(kind, location, issues):
        return None
    parameters: list[str] = []
    for index, parameter in enumerate(raw.get("keyParameters") or ()):
        where = loc(loc(location, "keyParameters"), index)
        text = str(parameter)
        problem = parameter_problem(text)
        if problem is None and text.startswith("method.request.path."):
            name = text.removeprefix("method.request.path.")
            if name not in path_parameters:
                problem = f"the route's path has no {{{name}}}"
        if problem is not None:
            issues.error(where, f"cache key parameter {text!r}: {problem}")
        else:
            parameters.append(text)
    enabled = raw.get("enabled")
    require = raw.get("requireAuthorization")
    return RouteCache(
        enabled=None if enabled is None else bool(enabled),
        ttl_s=_ttl(raw.get("ttl"), loc(location, "ttl"), issues),
        key_parameters=tuple(dict.fromkeys(parameters)),
        require_authorization=None if require is None else bool(require),
        unauthorized_strategy=_strategy(
            raw.get("unauthorizedStrategy"), loc(location, "unauthorizedStrategy"), issues
        ),
    )

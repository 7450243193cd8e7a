"""serverless.yml's stage cache, as the ``serverless-api-gateway-caching`` plugin declares it.

* ``custom.apiGatewayCaching: {enabled, ttlInSeconds, perKeyInvalidation: {requireAuthorization,
  handleUnauthorizedRequests}}``: the REST stage's cache. The plugin's TTL default is 3600 s
  (AWS's maximum); ``handleUnauthorizedRequests`` ``Ignore`` / ``IgnoreWithWarning`` (default) /
  ``Fail`` are AWS's ``SUCCEED_WITHOUT_RESPONSE_HEADER`` / ``SUCCEED_WITH_RESPONSE_HEADER`` /
  ``FAIL_WITH_403``.
* an ``http`` event's ``caching: {enabled, ttlInSeconds, cacheKeyParameters, perKeyInvalidation}``:
  as with the plugin, only events with ``enabled: true`` are cached (an ``ANY`` method only for
  GET); ``cacheKeyParameters`` entries ``{name: request.path.x | request.querystring.x |
  request.multivaluequerystring.x | request.header.x}``. Mapped ``integration.request.*``
  parameters are refused (Portway passes no mapped parameters to integrations).
"""

from __future__ import annotations

from collections.abc import Sequence

from server.cache.keys import parameter_problem
from server.config.errors import Issues, loc, loc_path
from server.config.model import CACHE_TTL_MAX, CacheControlStrategy, CacheSettings, RouteCache
from server.config.variables import Resolver

__all__ = ["CACHING_PLUGIN", "event_cache", "plugin_cache"]

CACHING_PLUGIN = ("custom", "apiGatewayCaching")
_PLUGIN_TTL_DEFAULT = CACHE_TTL_MAX
_UNAUTHORIZED = {
    "Ignore": CacheControlStrategy.SUCCEED_WITHOUT_RESPONSE_HEADER,
    "IgnoreWithWarning": CacheControlStrategy.SUCCEED_WITH_RESPONSE_HEADER,
    "Fail": CacheControlStrategy.FAIL_WITH_403,
}

Parts = tuple[str | int, ...]


def _ttl(r: Resolver, parts: Parts, issues: Issues) -> int | None:
    raw = r.get(*parts)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= CACHE_TTL_MAX:
        issues.error(loc_path(parts), f"ttlInSeconds must be a whole number from 0 to {CACHE_TTL_MAX}")
        return None
    return raw


def _invalidation(
    r: Resolver, parts: Parts, issues: Issues
) -> tuple[bool | None, CacheControlStrategy | None]:
    require = r.get(*parts, "requireAuthorization")
    handling = r.get(*parts, "handleUnauthorizedRequests")
    strategy = None
    if handling is not None:
        strategy = _UNAUTHORIZED.get(str(handling))
        if strategy is None:
            issues.error(
                loc_path((*parts, "handleUnauthorizedRequests")),
                f"use one of {', '.join(_UNAUTHORIZED)} (got {handling!r})",
            )
    return (None if require is None else bool(require)), strategy


def plugin_cache(r: Resolver, issues: Issues) -> CacheSettings | None:
    """The REST stage's cache, or None when the plugin's settings are absent or disabled."""
    if not r.get(*CACHING_PLUGIN, "enabled"):
        return None
    ttl = _ttl(r, (*CACHING_PLUGIN, "ttlInSeconds"), issues)
    require, strategy = _invalidation(r, (*CACHING_PLUGIN, "perKeyInvalidation"), issues)
    return CacheSettings(
        ttl_s=_PLUGIN_TTL_DEFAULT if ttl is None else ttl,
        require_authorization=True if require is None else require,
        unauthorized_strategy=strategy or CacheControlStrategy.SUCCEED_WITH_RESPONSE_HEADER,
    )


def event_cache(r: Resolver, parts: Parts, path_parameters: Sequence[str], issues: Issues) -> RouteCache:
    """An ``http`` event's cache override (``parts``: the event's); not cached unless enabled."""
    where = (*parts, "caching")
    if r.get(*where) is None or not r.get(*where, "enabled"):
        return RouteCache(enabled=False)
    parameters: list[str] = []
    raw = r.get(*where, "cacheKeyParameters") or []
    for index in range(len(raw) if isinstance(raw, list) else 0):
        name = r.get(*where, "cacheKeyParameters", index, "name")
        location = loc(loc_path((*where, "cacheKeyParameters")), index)
        text = f"method.{name}" if isinstance(name, str) else ""
        problem = parameter_problem(text) if text else "needs a name: request.querystring.x and the like"
        path_name = (
            text.removeprefix("method.request.path.") if text.startswith("method.request.path.") else None
        )
        if problem is None and path_name is not None and path_name not in path_parameters:
            problem = "the event's path has no such parameter"
        if problem is not None:
            issues.error(location, f"cache key parameter {name!r}: {problem}")
        else:
            parameters.append(text)
    require, strategy = _invalidation(r, (*where, "perKeyInvalidation"), issues)
    return RouteCache(
        enabled=True,
        ttl_s=_ttl(r, (*where, "ttlInSeconds"), issues),
        key_parameters=tuple(dict.fromkeys(parameters)),
        require_authorization=require,
        unauthorized_strategy=strategy,
    )

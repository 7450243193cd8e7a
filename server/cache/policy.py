"""Which requests the stage cache serves, for how long, and who may invalidate (pure core).

AWS's rules (aws-contract.md §4): caching is switched on per stage; with it on, GET methods are
cached and others only when a method override enables them; the TTL is the method's, else the
stage's (300 s by default, at most 3600, 0 = off). ``Cache-Control: max-age=0`` asks for a fresh
entry; when ``requireAuthorizationForCacheControl`` is set, only a caller allowed
``execute-api:InvalidateCache`` gets it, and ``unauthorizedCacheControlHeaderStrategy`` says
what everyone else gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.auth.base import AuthResult
from server.config.model import CacheControlStrategy, RouteConfig, StageConfig

__all__ = [
    "IGNORED_WARNING",
    "Invalidation",
    "MethodCache",
    "invalidation",
    "method_cache",
    "wants_fresh",
]

# The Warning header of SUCCEED_WITH_RESPONSE_HEADER (the wording is AWS's as reported;
# aws-contract.md §4 marks it unverified).
IGNORED_WARNING = ("Warning", '199 "Cache-control headers were ignored because the caller was unauthorized."')


@dataclass(frozen=True, slots=True)
class MethodCache:
    """The cache rules of one route on one stage. ``all_methods``: an explicit override enabled
    it, so every method of the route is cached (else GET requests only)."""

    ttl_s: int
    key_parameters: tuple[str, ...]
    require_authorization: bool
    unauthorized_strategy: CacheControlStrategy
    all_methods: bool

    def applies(self, method: str) -> bool:
        return self.all_methods or method == "GET"


def method_cache(stage: StageConfig, route: RouteConfig) -> MethodCache | None:
    """The rules for ``route`` on ``stage``, or None when nothing of it is cached."""
    settings = stage.cache
    if settings is None or not settings.enabled:
        return None
    override = route.cache
    if override is not None and override.enabled is False:
        return None
    ttl = settings.ttl_s if override is None or override.ttl_s is None else override.ttl_s
    if ttl <= 0:
        return None
    enabled = override is not None and override.enabled is True
    if not enabled and route.method not in ("GET", "ANY"):
        return None  # GET only by default: a POST route is never cached without an override
    require = settings.require_authorization
    strategy = settings.unauthorized_strategy
    if override is not None:
        if override.require_authorization is not None:
            require = override.require_authorization
        if override.unauthorized_strategy is not None:
            strategy = override.unauthorized_strategy
    return MethodCache(
        ttl_s=ttl,
        key_parameters=override.key_parameters if override is not None else (),
        require_authorization=require,
        unauthorized_strategy=strategy,
        all_methods=enabled and route.method != "ANY",
    )


def wants_fresh(cache_control: str | None) -> bool:
    """The request's ``Cache-Control`` asks for a fresh entry (``max-age=0``)."""
    if not cache_control:
        return False
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.strip().lower() == "max-age" and value.strip().strip('"') == "0":
            return True
    return False


@dataclass(frozen=True, slots=True)
class Invalidation:
    """What a ``max-age=0`` request gets: ``refresh`` (skip the lookup, store the new
    response), ``deny`` (403) or, when neither, the cached answer; ``warn``: add
    :data:`IGNORED_WARNING`."""

    refresh: bool = False
    deny: bool = False
    warn: bool = False


def invalidation(rules: MethodCache, auth: AuthResult | None) -> Invalidation:
    """Decide a ``max-age=0`` request. A caller may invalidate when authorization is not
    required, or when it was authenticated as an IAM caller (SigV4 on an ``AWS_IAM`` route):
    Portway's IAM callers are the operators it was configured with, which it treats as holding
    ``execute-api:InvalidateCache`` (docs/configuration.md, "Stage cache")."""
    if not rules.require_authorization or _iam_caller(auth):
        return Invalidation(refresh=True)
    strategy = rules.unauthorized_strategy
    if strategy is CacheControlStrategy.FAIL_WITH_403:
        return Invalidation(deny=True)
    return Invalidation(warn=strategy is CacheControlStrategy.SUCCEED_WITH_RESPONSE_HEADER)


def _iam_caller(auth: AuthResult | None) -> bool:
    return auth is not None and auth.identity is not None and bool(auth.identity.get("accessKey"))

"""HTTP API CORS configuration in both formats -> :class:`~server.config.model.CorsConfig`.

serverless.yml: ``provider.httpApi.cors``: ``true`` or ``{allowedOrigins, allowedHeaders,
allowedMethods, allowCredentials, exposedResponseHeaders, maxAge}``; what is left out takes
Serverless v3's defaults (origins ``*``, its seven headers, ``OPTIONS`` plus every route's method).
Native format: an HTTP API's ``cors`` with AWS's ``CorsConfiguration`` names (``allowOrigins``,
``allowHeaders``, ``allowMethods``, ``exposeHeaders``, ``maxAge``, ``allowCredentials``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from server.config.errors import Issues
from server.config.model import CorsConfig, RouteConfig

__all__ = ["SERVERLESS_CORS_HEADERS", "native_cors", "serverless_http_cors"]

SERVERLESS_CORS_HEADERS = (
    *("Content-Type", "X-Amz-Date", "Authorization", "X-Api-Key", "X-Amz-Security-Token"),
    *("X-Amz-User-Agent", "X-Amzn-Trace-Id"),
)


def _texts(value: Any, location: str, issues: Issues) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        issues.error(location, "expected a list of strings")
        return None
    return tuple(value)


def _max_age(value: Any, location: str, issues: Issues) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 86400:
        issues.error(location, f"{value!r}: seconds from -1 to 86400")
        return None
    return value


def _check_credentials(config: CorsConfig, location: str, issues: Issues) -> CorsConfig | None:
    if config.allow_credentials and "*" in config.allow_origins:
        # AWS refuses this configuration (browsers would refuse the responses anyway).
        issues.error(location, "allowCredentials cannot be used with the origin '*'")
        return None
    return config


def serverless_http_cors(
    raw: Any, routes: Iterable[RouteConfig], location: str, issues: Issues
) -> CorsConfig | None:
    if not raw:
        return None
    settings: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if raw is not True and not isinstance(raw, Mapping):
        issues.error(location, "expected true or {allowedOrigins, allowedHeaders, allowedMethods, ...}")
        return None
    methods = {"OPTIONS"}
    for route in routes:
        methods.add("*" if route.method == "ANY" else route.method)
    default_methods = ("*",) if "*" in methods else tuple(sorted(methods))

    def texts(key: str) -> tuple[str, ...] | None:
        return _texts(settings.get(key), f"{location}.{key}", issues)

    config = CorsConfig(
        allow_origins=texts("allowedOrigins") or ("*",),
        allow_headers=_texts(settings.get("allowedHeaders"), f"{location}.allowedHeaders", issues)
        or SERVERLESS_CORS_HEADERS,
        allow_methods=_texts(settings.get("allowedMethods"), f"{location}.allowedMethods", issues)
        or default_methods,
        expose_headers=_texts(
            settings.get("exposedResponseHeaders"), f"{location}.exposedResponseHeaders", issues
        )
        or (),
        max_age=_max_age(settings.get("maxAge"), f"{location}.maxAge", issues),
        allow_credentials=bool(settings.get("allowCredentials")),
    )
    return _check_credentials(config, location, issues)


def native_cors(raw: Mapping[str, Any], location: str, issues: Issues) -> CorsConfig | None:
    config = CorsConfig(
        allow_origins=_texts(raw.get("allowOrigins"), f"{location}.allowOrigins", issues) or (),
        allow_headers=_texts(raw.get("allowHeaders"), f"{location}.allowHeaders", issues) or (),
        allow_methods=_texts(raw.get("allowMethods"), f"{location}.allowMethods", issues) or (),
        expose_headers=_texts(raw.get("exposeHeaders"), f"{location}.exposeHeaders", issues) or (),
        max_age=_max_age(raw.get("maxAge"), f"{location}.maxAge", issues),
        allow_credentials=bool(raw.get("allowCredentials")),
    )
    return _check_credentials(config, location, issues)

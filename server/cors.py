"""HTTP API CORS (reference §9, DG:http-api-cors): what the gateway answers and adds.

With a CORS configuration, API Gateway answers a preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) itself, with no route, authorizer or integration involved,
and sets the CORS headers of every other response from the configuration, dropping those the
backend sent. An origin not allowed gets no CORS header at all (the browser then refuses).

Pure core: imports no I/O library.
"""

from __future__ import annotations

from server.config.model import CorsConfig
from server.messages import HttpResponse

__all__ = ["CorsPolicy"]


class CorsPolicy:
    """One API's configuration, with its header values joined once."""

    __slots__ = ("_origins", "_any_origin", "_methods", "_any_method", "_preflight", "_simple")

    def __init__(self, config: CorsConfig) -> None:
        self._origins = frozenset(config.allow_origins)
        self._any_origin = "*" in self._origins
        self._methods = frozenset(m.upper() for m in config.allow_methods)
        self._any_method = "*" in self._methods
        # AWS sends header names lower-cased and comma-joined.
        headers = ",".join(h.lower() for h in config.allow_headers)
        methods = ",".join(m.upper() for m in config.allow_methods)
        expose = ",".join(h.lower() for h in config.expose_headers)
        preflight: list[tuple[str, str]] = []
        if config.allow_credentials:
            preflight.append(("access-control-allow-credentials", "true"))
        if config.allow_headers:
            preflight.append(("access-control-allow-headers", headers))
        if config.allow_methods:
            preflight.append(("access-control-allow-methods", methods))
        if config.max_age is not None:
            preflight.append(("access-control-max-age", str(config.max_age)))
        self._preflight = tuple(preflight)
        simple: list[tuple[str, str]] = []
        if config.allow_credentials:
            simple.append(("access-control-allow-credentials", "true"))
        if config.expose_headers:
            simple.append(("access-control-expose-headers", expose))
        self._simple = tuple(simple)

    def allowed_origin(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None (not allowed)."""
        if origin in self._origins:
            return origin
        return "*" if self._any_origin else None

    def preflight(self, origin: str, method: str) -> HttpResponse:
        """AWS's answer to a preflight: 204, and the CORS headers only if origin and method pass."""
        response = HttpResponse(204)
        allowed = self.allowed_origin(origin)
        if allowed is not None and (self._any_method or method.upper() in self._methods):
            response.headers.append(("access-control-allow-origin", allowed))
            response.headers.extend(self._preflight)
        return response

    def response_headers(self, origin: str) -> list[tuple[str, str]]:
        """Headers for a non-preflight response to a request from ``origin``."""
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return []
        return [("access-control-allow-origin", allowed), *self._simple]

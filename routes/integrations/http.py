"""HTTP_PROXY and HTTP (non-proxy) integrations: forward the request to an HTTP backend.

Both share one pipeline, each step a method a subclass may override::

    build_request(info) -> BackendRequest      URL from the compiled URI, headers, body
    send(request)       -> BackendResponse     the only I/O; the error boundary
    build_response(info, request, backend) -> HttpResponse

Contract (reference §0.2, §2.2, §6):

* URL: ``config.uri`` with ``${stageVariables.x}`` and ``{param}``/``{param+}`` substituted
  (:mod:`routes.integrations._uri`), then the client's raw query string appended (merged with
  the URI's own query). Method: ``config.http_method``, ``ANY`` = the client's.
* Request headers: the client's, minus ``Host`` and the headers API Gateway drops (``Connection,
  Content-Length, Content-MD5, Expect, Max-Forwards, Proxy-Authenticate, Server, TE,
  Transfer-Encoding, Trailer, Upgrade, WWW-Authenticate``) and a SigV4 ``Authorization``; plus
  ``X-Amzn-Apigateway-Api-Id: {apiId}``, ``X-Amzn-Trace-Id`` (the caller's X-Ray header when it
  has a ``Root=``, else a new ``Root=1-<epoch hex>-<24 hex>``), ``Accept: application/json``
  when the client sent no ``Accept``, and ``User-Agent: AmazonAPIGateway_{apiId}`` when the client
  sent none (HTTP_PROXY) or always (HTTP). Repeated headers stay separate pairs, in order, each
  spelled as the client spelled it. ``Host`` (the backend's) comes first, ``Content-Length`` last
  (when there is a body, or the method is not GET/HEAD/OPTIONS/TRACE); no ``Content-Type`` is
  invented: the backend sees the client's or none.
* ``Accept-Encoding: identity`` replaces the client's value. HTTP_PROXY drops the backend's
  ``Content-Encoding`` (recorded AWS behaviour), so the body handed back must be the decoded
  representation: asking for identity means the backend normally sends it uncompressed and the
  gateway never pays for a decompress/recompress; a backend that compresses anyway (gzip,
  deflate) is decoded.
* Redirects are never followed: a 301 from the backend goes to the client as is.
* Response: status and body bytes as received (at most 10 MiB, else 502); headers as separate
  pairs (several ``Set-Cookie`` stay several), renamed ``x-amzn-Remapped-{Name}`` or dropped per
  integration type. Well-known names are spelled canonically (``set-cookie`` -> ``Set-Cookie``,
  aiohttp's ``hdrs`` list), others as the backend spelled them. Values that are not valid UTF-8
  are taken as Latin-1 (the gateway writes headers back as UTF-8).
* Failures: the integration timeout -> ``IntegrationTimeout`` (504); refused/reset connection,
  DNS failure, invalid, truncated or oversized response -> ``IntegrationFailure`` (502); a URL
  that is not a valid ``http(s)`` URL after substitution -> ``ApiConfigurationError`` (500).
  Nothing else escapes ``invoke`` (``CancelledError`` excepted).

I/O goes through :class:`routes.integrations.http_client.HttpClientPool` (keep-alive
connections per backend origin; see that module): by default the running loop's shared pool
(``http_client.default_pool()``, closed by ``http_client.close_default_pool()`` on app shutdown),
or the ``client=`` given to the constructor (owned by the caller).

The ``aiohttp.ClientSession`` argument is the app's shared session. The integrations no longer send
through it, but it is still checked: it must use a ``DummyCookieJar`` (a real jar would store one
client's backend cookies and replay them to every other client).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterable, Mapping
from typing import ClassVar, Final

import aiohttp
from aiohttp import hdrs
from multidict import CIMultiDict, CIMultiDictProxy, istr
from yarl import URL

from routes.integrations._uri import MissingPathParameter, UriTemplate, append_query, requote
from routes.integrations.http_client import (
    BackendError,
    HttpClientPool,
    Origin,
    default_pool,
    split_url,
)
from server.config.model import IntegrationConfig
from server.errors import ApiConfigurationError, IntegrationFailure, IntegrationTimeout
from server.events import RequestInfo
from server.messages import HttpResponse

__all__ = ["BackendRequest", "BackendResponse", "HttpIntegration", "HttpProxyIntegration", "new_trace_id"]

log = logging.getLogger("portway.integration.http")

# Request header rules (keys are lower-case names).
_DROP: Final = 0
_ACCEPT: Final = 1
_USER_AGENT: Final = 2
_AUTHORIZATION: Final = 3
_TRACE: Final = 4

_DROPPED_REQUEST_HEADERS: Final = (
    "connection",
    "content-length",
    "content-md5",
    "expect",
    "max-forwards",
    "proxy-authenticate",
    "server",
    "te",
    "transfer-encoding",
    "trailer",
    "upgrade",
    "www-authenticate",
    "host",  # the backend's host is sent (the client derives it from the URL)
    "accept-encoding",  # replaced by "identity", see the module docstring
    "x-amzn-apigateway-api-id",  # set by the gateway, never taken from the client
)

_PROXY_REQUEST_RULES: Final[Mapping[str, int]] = {
    **dict.fromkeys(_DROPPED_REQUEST_HEADERS, _DROP),
    "accept": _ACCEPT,
    "user-agent": _USER_AGENT,
    "authorization": _AUTHORIZATION,
    "x-amzn-trace-id": _TRACE,
}
# Non-proxy: the gateway's own User-Agent replaces the client's.
_NON_PROXY_REQUEST_RULES: Final[Mapping[str, int]] = {**_PROXY_REQUEST_RULES, "user-agent": _DROP}

_SIGV4_PREFIX: Final = "AWS4-HMAC-SHA256"

# Response header rules: lower-case name -> the name to send ("" = drop). Names not listed are
# sent as the backend spelled them.
_CANONICAL_NAMES: Final = {str(v).lower(): str(v) for v in vars(hdrs).values() if isinstance(v, istr)}
_PROXY_REMAPPED: Final = ("Connection", "Content-Length", "Date", "Server")
_NON_PROXY_REMAPPED: Final = (
    "Authorization",
    "Connection",
    "Content-Length",
    "Content-MD5",
    "Date",
    "Expect",
    "Host",
    "Max-Forwards",
    "Proxy-Authenticate",
    "Server",
    "Trailer",
    "Upgrade",
    "User-Agent",
    "WWW-Authenticate",
)


def _response_rules(remapped: tuple[str, ...], dropped: tuple[str, ...]) -> Mapping[str, str]:
    rules = dict(_CANONICAL_NAMES)
    rules.update({name.lower(): f"x-amzn-Remapped-{name}" for name in remapped})
    rules.update(dict.fromkeys(dropped, ""))
    return rules


_PROXY_RESPONSE_RULES: Final = _response_rules(
    _PROXY_REMAPPED, ("content-encoding", "via", "transfer-encoding")
)
# Non-proxy: Transfer-Encoding is framing the gateway redoes, Content-Encoding describes a body that
# is already decoded (see the module docstring), X-Amzn-Trace-Id is set by the gateway.
_NON_PROXY_RESPONSE_RULES: Final = _response_rules(
    _NON_PROXY_REMAPPED, ("transfer-encoding", "content-encoding", "x-amzn-trace-id")
)

_getrandbits: Final = random.getrandbits


def new_trace_id(now_ms: int) -> str:
    """An X-Ray trace header value, ``Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>``."""
    # Not a secret: the PRNG (seeded once per process) is enough and avoids a syscall per request.
    return f"Root=1-{now_ms // 1000:08x}-{_getrandbits(96):024x}"


class BackendRequest:
    """What will be sent to the backend (mutable, so later mapping steps can adjust it).

    ``BackendRequest(method, url, headers, body, trace_id)``: ``url`` an absolute http(s) URL,
    already percent-encoded (``ValueError`` otherwise); ``headers`` a ``CIMultiDict`` or pairs.
    ``url`` and ``headers`` may be read and replaced; ``headers`` is built on first access (the
    integration keeps plain pairs until a mapping step asks). ``Host`` and ``Content-Length`` are
    written by the HTTP client, from the URL and the body.
    """

    __slots__ = ("_headers", "_pairs", "body", "method", "origin", "target", "trace_id")

    def __init__(
        self,
        method: str,
        url: URL | str,
        headers: CIMultiDict[str] | Iterable[tuple[str, str]],
        body: bytes,
        trace_id: str,
    ) -> None:
        self.method = method
        self.origin, self.target = split_url(requote(str(url)))
        self._headers: CIMultiDict[str] | None = None
        self._pairs: list[tuple[str, str]] = []
        if isinstance(headers, CIMultiDict):
            self._headers = headers
        else:
            self._pairs = list(headers)
        self.body = body
        self.trace_id = trace_id

    @classmethod
    def _new(
        cls,
        method: str,
        origin: Origin,
        target: str,
        pairs: list[tuple[str, str]],
        body: bytes,
        trace_id: str,
    ) -> BackendRequest:
        self = cls.__new__(cls)
        self.method = method
        self.origin = origin
        self.target = target
        self._pairs = pairs
        self._headers = None
        self.body = body
        self.trace_id = trace_id
        return self

    @property
    def url(self) -> URL:
        return URL(self.origin.base + self.target, encoded=True)

    @url.setter
    def url(self, url: URL) -> None:
        self.origin, self.target = split_url(requote(str(url)))

    @property
    def headers(self) -> CIMultiDict[str]:
        if self._headers is None:
            self._headers = CIMultiDict(self._pairs)
        return self._headers

    @headers.setter
    def headers(self, headers: CIMultiDict[str]) -> None:
        self._headers = headers

    def header_items(self) -> Iterable[tuple[str, str]]:
        """The headers to send, in order (without ``Host`` and ``Content-Length``)."""
        return self._pairs if self._headers is None else self._headers.items()

    def loggable_url(self) -> str:
        """Scheme, host and path: query strings may carry tokens."""
        return self.origin.base + self.target.partition("?")[0]


class BackendResponse:
    """What the backend answered.

    ``raw_headers``: the pairs as received (names as spelled, repeats kept, values decoded);
    ``headers``: a case-insensitive view of them, built on first access.
    """

    __slots__ = ("_headers", "body", "raw_headers", "status")

    def __init__(
        self,
        status: int,
        headers: CIMultiDictProxy[str] | CIMultiDict[str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> None:
        self.status = status
        if isinstance(headers, (CIMultiDict, CIMultiDictProxy)):
            self.raw_headers = list(headers.items())
        else:
            self.raw_headers = list(headers)
        self.body = body
        self._headers: CIMultiDictProxy[str] | None = None

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        if self._headers is None:
            self._headers = CIMultiDictProxy(CIMultiDict(self.raw_headers))
        return self._headers


class _HttpIntegrationBase:
    _request_rules: ClassVar[Mapping[str, int]]
    _response_rules: ClassVar[Mapping[str, str]]

    def __init__(
        self,
        config: IntegrationConfig,
        session: aiohttp.ClientSession | None,
        *,
        client: HttpClientPool | None = None,
    ) -> None:
        if not config.uri:
            raise ValueError(f"{config.type} integration needs a uri")
        if session is not None and not isinstance(session.cookie_jar, aiohttp.DummyCookieJar):
            # Fail at startup: a shared cookie jar leaks backend cookies between clients.
            raise ValueError(
                "HTTP integrations need a ClientSession with cookie_jar=aiohttp.DummyCookieJar()"
            )
        self._template = UriTemplate(config.uri)
        self._session = session
        self._client = client
        self._shared_client = client is None
        method = config.http_method.upper()
        self._method: str | None = None if method == "ANY" else method
        self._timeout_s = config.timeout_ms / 1000
        self._timeout_ms = config.timeout_ms
        # A URI without variables: origin and target are worked out (and validated) once.
        self._static: tuple[Origin, str] | None = None
        if self._template.is_static:
            with contextlib.suppress(ValueError):  # else reported (500) per request
                self._static = split_url(requote(append_query(self._template.source, "")))

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        request = self.build_request(info)
        backend = await self.send(request)
        return self.build_response(info, request, backend)

    async def close(self) -> None:
        # The pool is shared (closed with the app) or the caller's.
        return None

    # -- request ---------------------------------------------------------------------------------

    def build_request(self, info: RequestInfo) -> BackendRequest:
        """URL, method, headers and body for the backend (raises ``ApiConfigurationError``)."""
        req = info.request
        origin, target = self._url(info)
        headers, trace_id = self._request_headers(info)
        return BackendRequest._new(self._method or req.method, origin, target, headers, req.body, trace_id)

    def _url(self, info: RequestInfo) -> tuple[Origin, str]:
        query = info.request.query_string
        if self._static is not None and not query:
            return self._static
        try:
            raw = self._template.render(info.path_parameters, info.stage_variables)
        except MissingPathParameter as exc:
            log.error("integration uri %r: no path parameter %r", self._template.source, exc.name)
            raise ApiConfigurationError() from exc
        raw = requote(append_query(raw, query))
        try:
            return split_url(raw)
        except ValueError as exc:
            log.error("integration uri %r gave an invalid URL %r: %s", self._template.source, raw, exc)
            raise ApiConfigurationError() from exc

    def _request_headers(self, info: RequestInfo) -> tuple[list[tuple[str, str]], str]:
        rules = self._request_rules
        headers: list[tuple[str, str]] = []
        append = headers.append
        has_accept = has_user_agent = False
        trace_id = ""
        for pair in info.request.headers:
            rule = rules.get(pair[0].lower())
            if rule is None:
                append(pair)
            elif rule == _ACCEPT:
                has_accept = True
                append(pair)
            elif rule == _USER_AGENT:
                has_user_agent = True
                append(pair)
            elif rule == _AUTHORIZATION:
                if not pair[1].startswith(_SIGV4_PREFIX):
                    append(pair)
            elif rule == _TRACE and not trace_id and "Root=" in pair[1]:
                # Propagate a caller's X-Ray trace (the first one); anything else is replaced.
                trace_id = pair[1]
            # _DROP: nothing
        if not trace_id:
            trace_id = new_trace_id(info.now_ms)
        if not has_accept:
            append(("Accept", "application/json"))
        if not has_user_agent:
            append(("User-Agent", f"AmazonAPIGateway_{info.api_id}"))
        append(("Accept-Encoding", "identity"))
        append(("X-Amzn-Apigateway-Api-Id", info.api_id))
        append(("X-Amzn-Trace-Id", trace_id))
        return headers, trace_id

    # -- I/O -------------------------------------------------------------------------------------

    def _pool(self) -> HttpClientPool:
        client = self._client
        if client is None or (self._shared_client and client.closed):
            client = self._client = default_pool()
        return client

    async def send(self, request: BackendRequest) -> BackendResponse:
        """Send one request; every failure leaves as a ``GatewayError`` chained to its cause."""
        try:
            status, headers, body = await self._pool().request(
                request.origin,
                request.method,
                request.target,
                request.header_items(),
                request.body,
                self._timeout_s,
            )
        except TimeoutError as exc:
            log.warning(
                "%s %s: no response within %d ms", request.method, request.loggable_url(), self._timeout_ms
            )
            raise IntegrationTimeout() from exc
        except (BackendError, OSError, ValueError) as exc:
            log.warning("%s %s: %s: %s", request.method, request.loggable_url(), type(exc).__name__, exc)
            raise IntegrationFailure() from exc
        except Exception as exc:
            # Not expected from the client, but the contract is that a backend problem is a 502.
            log.exception("%s %s: unexpected error", request.method, request.loggable_url())
            raise IntegrationFailure() from exc
        response = BackendResponse.__new__(BackendResponse)
        response.status = status
        response.raw_headers = headers
        response.body = body
        response._headers = None
        return response

    # -- response --------------------------------------------------------------------------------

    def build_response(
        self, info: RequestInfo, request: BackendRequest, backend: BackendResponse
    ) -> HttpResponse:
        """The client response: backend status and body, headers filtered by the class's rules."""
        rules = self._response_rules
        headers: list[tuple[str, str]] = []
        append = headers.append
        for name, value in backend.raw_headers:
            rule = rules.get(name.lower())
            if rule is None:
                append((name, value))
            elif rule:
                append((rule, value))
        return HttpResponse(backend.status, headers, backend.body)


class HttpProxyIntegration(_HttpIntegrationBase):
    """HTTP_PROXY: the request is passed through, the response passed back (header rules above).

    ``HttpProxyIntegration(config, session, client=None)``: ``config.uri`` is the backend URI
    template, ``config.http_method`` the backend method (``ANY`` = the client's),
    ``config.timeout_ms`` the integration timeout. ``session`` is the app's shared
    ``aiohttp.ClientSession`` (checked, see the module docstring); ``client`` an
    :class:`HttpClientPool` to use instead of the loop's shared one.
    """

    _request_rules = _PROXY_REQUEST_RULES
    _response_rules = _PROXY_RESPONSE_RULES


class HttpIntegration(_HttpIntegrationBase):
    """HTTP (non-proxy) integration, ``HttpIntegration(config, session, client=None)``.

    Done: the request is built like HTTP_PROXY's but with ``User-Agent: AmazonAPIGateway_{apiId}``;
    response headers named in the non-proxy list are renamed ``x-amzn-Remapped-*``; the response
    carries the ``X-Amzn-Trace-Id`` sent to the backend (AWS adds it to HTTP integration responses,
    not to HTTP_PROXY ones, §0.2).

    Request templates, passthrough behaviour and parameter mapping are applied before this class
    sees the request (the ``transform_request`` phase, :mod:`server.transform.request`); integration
    responses wrap it (:class:`server.transform.response.TransformingIntegration`). A route with
    no mapping passes the client's headers and query through like HTTP_PROXY (AWS sends only
    mapped ones; docs/transform.md).
    """

    _request_rules = _NON_PROXY_REQUEST_RULES
    _response_rules = _NON_PROXY_RESPONSE_RULES

    def build_response(
        self, info: RequestInfo, request: BackendRequest, backend: BackendResponse
    ) -> HttpResponse:
        response = super().build_response(info, request, backend)
        response.headers.append(("X-Amzn-Trace-Id", request.trace_id))
        return response

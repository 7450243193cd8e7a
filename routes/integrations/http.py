"""HTTP_PROXY and HTTP (non-proxy) integrations: forward the request to an HTTP backend.

Both share one pipeline, each step a method a subclass may override::

    build_request(info) -> BackendRequest      URL from the compiled URI, headers, body
    send(request)       -> BackendResponse     the only I/O; the error boundary
    build_response(info, request, backend) -> HttpResponse

Contract (aws-contract.md §0.2, §2.2, §6):

* URL: ``config.uri`` with ``${stageVariables.x}`` and ``{param}``/``{param+}`` substituted
  (:mod:`routes.integrations._uri`), then the client's raw query string appended (merged with
  the URI's own query). Method: ``config.http_method``, ``ANY`` = the client's.
* Request headers, HTTP_PROXY: the client's, minus ``Host`` and the headers API Gateway drops
  (``Connection, Content-Encoding, Content-Length, Content-MD5, Expect, Max-Forwards,
  Proxy-Authenticate, Server, TE, Transfer-Encoding, Trailer, Upgrade, Via, WWW-Authenticate``) and
  a SigV4 ``Authorization``; plus ``X-Amzn-Apigateway-Api-Id: {apiId}``, ``X-Amzn-Trace-Id`` (the
  request's, server/trace.py), ``Accept: application/json`` when the client sent no ``Accept`` and
  ``User-Agent: AmazonAPIGateway_{apiId}`` when it sent none. ``Accept-Encoding`` goes as the client
  sent it (recorded). Repeated headers stay separate pairs, in order, each spelled as the client
  spelled it. ``Host`` (the backend's) comes first, ``Content-Length`` last (when there is a body,
  or the method is not GET/HEAD/OPTIONS/TRACE).
* Request headers, HTTP (non-proxy, no request parameter mapping): only API Gateway's own
  (recorded): ``Accept: application/json``, ``User-Agent: AmazonAPIGateway_{apiId}``,
  ``X-Amzn-Apigateway-Api-Id``, ``X-Amzn-Trace-Id``, and the client's ``Content-Type`` when a
  body is passed through; none of the client's other headers.
* Response encodings: a body the backend compressed in a coding the HTTP client decodes (gzip,
  deflate; br/zstd when installed) is handed back decoded, its ``Content-Encoding`` dropped; one
  in another coding is passed on with its ``Content-Encoding``, so the client can still read it.
* Redirects are never followed: a 301 from the backend goes to the client as is.
* Response, HTTP_PROXY: status and body bytes as received (at most 10 MiB, else 502); headers as
  separate pairs (several ``Set-Cookie`` stay several), ``Connection, Content-Length, Date, Server,
  x-amzn-RequestId`` renamed ``x-amzn-Remapped-{Name}`` (recorded), ``Via`` and
  ``Transfer-Encoding`` dropped.
* Response, HTTP (non-proxy, default integration response): status 200 whatever the backend's,
  the body as received, ``Content-Type: application/json`` and ``X-Amzn-Trace-Id``, none of the
  backend's headers (recorded: LocalStack ``test_http_integration_invoke_status_code_passthrough``,
  ``test_apigateway_header_remapping_http[HTTP]``; aws-contract.md §7.5).
* Well-known response header names are spelled canonically (``set-cookie`` -> ``Set-Cookie``,
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
from routes.integrations.http_wire import decodable
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
    "content-encoding",
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
    "via",
    "www-authenticate",
    "host",  # the backend's host is sent (the client derives it from the URL)
    "x-amzn-apigateway-api-id",  # set by the gateway, never taken from the client
)

_PROXY_REQUEST_RULES: Final[Mapping[str, int]] = {
    **dict.fromkeys(_DROPPED_REQUEST_HEADERS, _DROP),
    "accept": _ACCEPT,
    "user-agent": _USER_AGENT,
    "authorization": _AUTHORIZATION,
    "x-amzn-trace-id": _DROP,  # the request's trace is sent (server/trace.py)
}

_SIGV4_PREFIX: Final = "AWS4-HMAC-SHA256"

# Response header rules: lower-case name -> the name to send ("" = drop). Names not listed are
# sent as the backend spelled them.
_CANONICAL_NAMES: Final = {str(v).lower(): str(v) for v in vars(hdrs).values() if isinstance(v, istr)}
_PROXY_REMAPPED: Final = ("Connection", "Content-Length", "Date", "Server", "x-amzn-RequestId")
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


# Content-Encoding: see build_response (dropped when the body was decoded).
_PROXY_RESPONSE_RULES: Final = _response_rules(_PROXY_REMAPPED, ("via", "transfer-encoding"))
# Non-proxy: the names AWS remaps when response parameters map backend headers (not mapped yet, so
# the default integration response sends none of the backend's headers; kept for that step).
_NON_PROXY_RESPONSE_RULES: Final = _response_rules(
    _NON_PROXY_REMAPPED, ("transfer-encoding", "content-encoding", "x-amzn-trace-id")
)

_getrandbits: Final = random.getrandbits


def new_trace_id(now_ms: int) -> str:
    """An X-Ray trace header value, ``Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>``."""
    # Not a secret: the PRNG (seeded once per process) is enough and avoids a syscall per request.
    return f"Root=1-{now_ms // 1000:08x}-{_getrandbits(96):024x}"


def _trace(info: RequestInfo) -> str:
    """The request's trace (set by routing); a RequestInfo built without one continues the caller's."""
    if info.trace_id:
        return info.trace_id
    caller = info.request.header("x-amzn-trace-id")
    return caller if caller and "Root=" in caller else new_trace_id(info.now_ms)


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
        trace_id = _trace(info)
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
            elif rule == _AUTHORIZATION and not pair[1].startswith(_SIGV4_PREFIX):
                append(pair)
            # _DROP: nothing
        if not has_accept:
            append(("Accept", "application/json"))
        if not has_user_agent:
            append(("User-Agent", f"AmazonAPIGateway_{info.api_id}"))
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
            lname = name.lower()
            rule = rules.get(lname)
            if lname == "content-encoding":
                if not decodable(value) and value.strip().lower() != "identity":
                    append((name, value))  # passed on still encoded: the client decodes it
            elif rule is None:
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

    Without request parameters, templates or integration responses AWS's defaults apply
    (recorded, see the module docstring): the backend gets only the gateway's own headers and the
    body; the client gets status 200, the backend's body, ``Content-Type: application/json`` and
    the ``X-Amzn-Trace-Id`` sent to the backend, and none of the backend's headers.

    Request templates, passthrough behaviour and parameter mapping are applied before this class
    sees the request (the ``transform_request`` phase, :mod:`server.transform.request`); integration
    responses wrap it (:class:`server.transform.response.TransformingIntegration`).
    """

    _request_rules = _PROXY_REQUEST_RULES
    _response_rules = _NON_PROXY_RESPONSE_RULES

    def __init__(
        self,
        config: IntegrationConfig,
        session: aiohttp.ClientSession | None,
        *,
        client: HttpClientPool | None = None,
    ) -> None:
        super().__init__(config, session, client=client)
        # With request parameters or templates the transform phase has already replaced the
        # client's headers by the mapped ones: those go (with the gateway's own). With integration
        # responses the wrapper selects by the backend's status and maps its headers, so it gets
        # the backend's answer as it is. Without either, AWS's recorded defaults apply.
        self._mapped_request = bool(config.request_parameters or config.request_templates)
        self._raw_response = bool(config.responses)

    def _request_headers(self, info: RequestInfo) -> tuple[list[tuple[str, str]], str]:
        if self._mapped_request:
            return super()._request_headers(info)
        trace_id = _trace(info)
        headers = [("Accept", "application/json"), ("User-Agent", f"AmazonAPIGateway_{info.api_id}")]
        content_type = info.request.header("content-type")
        if info.request.body and content_type is not None:
            headers.append(("Content-Type", content_type))
        headers += [("X-Amzn-Apigateway-Api-Id", info.api_id), ("X-Amzn-Trace-Id", trace_id)]
        return headers, trace_id

    def build_response(
        self, info: RequestInfo, request: BackendRequest, backend: BackendResponse
    ) -> HttpResponse:
        if self._raw_response:  # the integration responses decide (server/transform/response.py)
            response = super().build_response(info, request, backend)
            response.headers.append(("X-Amzn-Trace-Id", request.trace_id))
            return response
        headers = [("Content-Type", "application/json"), ("X-Amzn-Trace-Id", request.trace_id)]
        return HttpResponse(200, headers, backend.body)

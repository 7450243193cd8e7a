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
  sent none (HTTP_PROXY) or always (HTTP). Repeated headers stay separate pairs, in order.
* ``Accept-Encoding: identity`` replaces the client's value. HTTP_PROXY drops the backend's
  ``Content-Encoding`` (recorded AWS behaviour), so the body handed back must be the decoded
  representation: asking for identity means the backend normally sends it uncompressed and the
  gateway never pays for a decompress/recompress; a backend that compresses anyway is decoded by
  aiohttp (``auto_decompress=True`` per request, whatever the shared session's default).
* Redirects are never followed: a 301 from the backend goes to the client as is.
* Response: status and body bytes as received; headers as separate pairs (several
  ``Set-Cookie`` stay several), renamed ``x-amzn-Remapped-{Name}`` or dropped per integration type.
  aiohttp spells well-known names canonically (``set-cookie`` -> ``Set-Cookie``).
* Failures: the integration timeout -> ``IntegrationTimeout`` (504); refused/reset connection,
  DNS failure, invalid or truncated response -> ``IntegrationFailure`` (502); a URL that is not a
  valid ``http(s)`` URL after substitution -> ``ApiConfigurationError`` (500). Nothing else
  escapes ``invoke`` (``CancelledError`` excepted).

The ``aiohttp.ClientSession`` is the app's single pooled session; integrations never create or
close it. It must use a ``DummyCookieJar`` (checked in the constructor): a real jar would store one
client's backend cookies and replay them to every other client.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from routes.integrations._uri import MissingPathParameter, UriTemplate, append_query, requote
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
    "host",  # the backend's host is sent (aiohttp derives it from the URL)
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

# Response header rules: lower-case name -> "" (drop) or the x-amzn-Remapped-* name to use instead.
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
    rules = {name.lower(): f"x-amzn-Remapped-{name}" for name in remapped}
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

# aiohttp would label a bytes body application/octet-stream; the backend sees the client's
# Content-Type or none. Accept, Accept-Encoding and User-Agent are always set explicitly.
_SKIP_AUTO_HEADERS: Final = ("Content-Type",)
_HTTP_SCHEMES: Final = frozenset({"http", "https"})
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:")


def new_trace_id(now_ms: int) -> str:
    """An X-Ray trace header value, ``Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>``."""
    # Not a secret: the PRNG is enough and avoids a syscall per request.
    return f"Root=1-{now_ms // 1000:08x}-{random.getrandbits(96):024x}"


@dataclass(slots=True)
class BackendRequest:
    """What will be sent to the backend (mutable, so later mapping steps can adjust it)."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    body: bytes
    trace_id: str


@dataclass(slots=True)
class BackendResponse:
    """What the backend answered; ``headers`` is aiohttp's parsed view (repeats kept, not copied)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class _HttpIntegrationBase:
    _request_rules: ClassVar[Mapping[str, int]]
    _response_rules: ClassVar[Mapping[str, str]]

    def __init__(self, config: IntegrationConfig, session: aiohttp.ClientSession) -> None:
        if not config.uri:
            raise ValueError(f"{config.type} integration needs a uri")
        if not isinstance(session.cookie_jar, aiohttp.DummyCookieJar):
            # Fail at startup: a shared cookie jar leaks backend cookies between clients.
            raise ValueError(
                "HTTP integrations need a ClientSession with cookie_jar=aiohttp.DummyCookieJar()"
            )
        self._template = UriTemplate(config.uri)
        self._session = session
        method = config.http_method.upper()
        self._method: str | None = None if method == "ANY" else method
        timeout_s = config.timeout_ms / 1000
        # ceil_threshold above the timeout: aiohttp would otherwise round timeouts >= 5 s up to
        # the next whole second, and the integration timeout is part of the contract.
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, ceil_threshold=timeout_s + 1)
        self._timeout_ms = config.timeout_ms

    async def invoke(self, info: RequestInfo) -> HttpResponse:
        request = self.build_request(info)
        backend = await self.send(request)
        return self.build_response(info, request, backend)

    async def close(self) -> None:
        # The session is shared and owned by the app.
        return None

    # -- request ---------------------------------------------------------------------------------

    def build_request(self, info: RequestInfo) -> BackendRequest:
        """URL, method, headers and body for the backend (raises ``ApiConfigurationError``)."""
        req = info.request
        headers, trace_id = self._request_headers(info)
        return BackendRequest(
            method=self._method or req.method,
            url=self._url(info),
            headers=headers,
            body=req.body,
            trace_id=trace_id,
        )

    def _url(self, info: RequestInfo) -> URL:
        try:
            raw = self._template.render(info.path_parameters, info.stage_variables)
        except MissingPathParameter as exc:
            log.error("integration uri %r: no path parameter %r", self._template.source, exc.name)
            raise ApiConfigurationError() from exc
        raw = requote(append_query(raw, info.request.query_string))
        try:
            # encoded=True: path parameters and the query are passed on exactly as received.
            url = URL(raw, encoded=True)
            host = url.raw_host  # yarl parses the authority lazily: a bad port raises here
        except ValueError as exc:
            log.error("integration uri %r gave an invalid URL %r: %s", self._template.source, raw, exc)
            raise ApiConfigurationError() from exc
        if url.scheme not in _HTTP_SCHEMES or not host or not _HOST_CHARS.issuperset(host):
            log.error("integration uri %r gave an invalid URL %r", self._template.source, raw)
            raise ApiConfigurationError()
        return url

    def _request_headers(self, info: RequestInfo) -> tuple[CIMultiDict[str], str]:
        rules = self._request_rules
        headers: CIMultiDict[str] = CIMultiDict()
        # aiohttp merges session defaults into the request headers by exact (case-sensitive) name:
        # "X-A" then "x-a" would keep only the last value, so repeats reuse the first spelling.
        spelling: dict[str, str] = {}
        has_accept = has_user_agent = False
        trace_id = ""
        for name, value in info.request.headers:
            lname = name.lower()
            rule = rules.get(lname)
            if rule is None:
                headers.add(spelling.setdefault(lname, name), value)
            elif rule == _ACCEPT:
                has_accept = True
                headers.add(name, value)
            elif rule == _USER_AGENT:
                has_user_agent = True
                headers.add(name, value)
            elif rule == _AUTHORIZATION:
                if not value.startswith(_SIGV4_PREFIX):
                    headers.add(name, value)
            elif rule == _TRACE and not trace_id and "Root=" in value:
                # Propagate a caller's X-Ray trace (the first one); anything else is replaced.
                trace_id = value
            # _DROP: nothing
        if not trace_id:
            trace_id = new_trace_id(info.now_ms)
        # add(), not item assignment: none of these names can be present any more (no scan needed).
        if not has_accept:
            headers.add("Accept", "application/json")
        if not has_user_agent:
            headers.add("User-Agent", f"AmazonAPIGateway_{info.api_id}")
        headers.add("Accept-Encoding", "identity")
        headers.add("X-Amzn-Apigateway-Api-Id", info.api_id)
        headers.add("X-Amzn-Trace-Id", trace_id)
        return headers, trace_id

    # -- I/O -------------------------------------------------------------------------------------

    async def send(self, request: BackendRequest) -> BackendResponse:
        """Send one request; every failure leaves as a ``GatewayError`` chained to its cause."""
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body or None,
                allow_redirects=False,
                # Only needed (and only paid for) when aiohttp would otherwise invent a Content-Type.
                skip_auto_headers=(
                    _SKIP_AUTO_HEADERS if request.body and "Content-Type" not in request.headers else None
                ),
                timeout=self._timeout,
                auto_decompress=True,
                raise_for_status=False,
            ) as resp:
                body = await resp.read()
                return BackendResponse(resp.status, resp.headers, body)
        except TimeoutError as exc:  # before ClientError: aiohttp's timeouts are both
            log.warning(
                "%s %s: no response within %d ms", request.method, _loggable(request.url), self._timeout_ms
            )
            raise IntegrationTimeout() from exc
        except aiohttp.InvalidURL as exc:
            log.error("%s %s: invalid backend URL: %s", request.method, _loggable(request.url), exc)
            raise ApiConfigurationError() from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            log.warning("%s %s: %s: %s", request.method, _loggable(request.url), type(exc).__name__, exc)
            raise IntegrationFailure() from exc
        except Exception as exc:
            # Not expected from aiohttp, but the contract is that a backend problem is a 502.
            log.exception("%s %s: unexpected error", request.method, _loggable(request.url))
            raise IntegrationFailure() from exc

    # -- response --------------------------------------------------------------------------------

    def build_response(
        self, info: RequestInfo, request: BackendRequest, backend: BackendResponse
    ) -> HttpResponse:
        """The client response: backend status and body, headers filtered by the class's rules."""
        rules = self._response_rules
        headers: list[tuple[str, str]] = []
        for name, value in backend.headers.items():
            if not value.isascii():
                value = _writable(value)
            rule = rules.get(name.lower())
            if rule is None:
                headers.append((name, value))
            elif rule:
                headers.append((rule, value))
        return HttpResponse(backend.status, headers, backend.body)


def _writable(value: str) -> str:
    # aiohttp decodes header values as UTF-8 with surrogateescape, but writes them back as strict
    # UTF-8: a backend value that is not valid UTF-8 would make the gateway's response unwritable.
    # Valid UTF-8 round-trips unchanged; other bytes are taken as Latin-1.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("latin-1")
    return value


def _loggable(url: URL) -> str:
    # Query strings may carry tokens; logs get scheme, host and path only.
    return str(url.with_query(None).with_fragment(None))


class HttpProxyIntegration(_HttpIntegrationBase):
    """HTTP_PROXY: the request is passed through, the response passed back (header rules above).

    ``HttpProxyIntegration(config, session)``: ``config.uri`` is the backend URI template,
    ``config.http_method`` the backend method (``ANY`` = the client's), ``config.timeout_ms`` the
    integration timeout. ``session`` is the app's shared ``aiohttp.ClientSession``.
    """

    _request_rules = _PROXY_REQUEST_RULES
    _response_rules = _PROXY_RESPONSE_RULES


class HttpIntegration(_HttpIntegrationBase):
    """HTTP (non-proxy) integration, ``HttpIntegration(config, session)``.

    Done: the request is built like HTTP_PROXY's but with ``User-Agent: AmazonAPIGateway_{apiId}``;
    response headers named in the non-proxy list are renamed ``x-amzn-Remapped-*``; the response
    carries the ``X-Amzn-Trace-Id`` sent to the backend (AWS adds it to HTTP integration responses,
    not to HTTP_PROXY ones, §0.2).

    Not done yet (later issue), and where it goes:

    * request parameter mapping and request templates (passthrough behaviour, 415): override
      :meth:`build_request`. AWS sends only *mapped* headers and query parameters to a non-proxy
      backend; until mapping exists the client's are passed through like HTTP_PROXY does.
    * integration responses (``selectionPattern`` on the status code), response parameters and
      response templates: override :meth:`build_response`. AWS returns only mapped headers to the
      client; until then the backend's pass through, remapped.
    """

    _request_rules = _NON_PROXY_REQUEST_RULES
    _response_rules = _NON_PROXY_RESPONSE_RULES

    def build_response(
        self, info: RequestInfo, request: BackendRequest, backend: BackendResponse
    ) -> HttpResponse:
        response = super().build_response(info, request, backend)
        response.headers.append(("X-Amzn-Trace-Id", request.trace_id))
        return response

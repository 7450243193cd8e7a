"""Lambda authorizers (REST ``TOKEN``/``REQUEST``, HTTP API ``REQUEST`` 1.0/2.0, WebSocket
``$connect`` ``REQUEST``), implemented by a Python handler of the project (reference §5.1, §5.2).

The handler runs through the same invokers (and isolation modes) as route functions. The flow:

1. identity sources read from the request; one missing or empty: 401 without invoking (TOKEN:
   ``identityValidationExpression`` must match the token too);
2. with a TTL, the result cached for these identity values is read from the **store** (so every
   node shares it); the cached *response* is re-evaluated against this request's method ARN, as
   AWS does (a policy allowing one method denies the others while cached);
3. otherwise the handler is invoked (timeout: the function's, capped at AWS's 10 s): raising
   ``Exception("Unauthorized")`` gives 401; any other error, a timeout or a malformed response
   gives 500 ``AuthorizerConfigurationException``; the response is cached for ``ttl_s``.

A store that cannot be reached is treated as a cache miss (the function decides), never as an
allow.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import Any

import orjson

from routes.integrations.base import FunctionError, InvokeFailure, LambdaInvoker
from server.auth.base import AuthRequest, AuthResult
from server.auth.factory import BUILDERS, AuthDeps
from server.auth.lambda_input import (
    http_event,
    identity_values,
    parse_identity_source,
    rest_request_event,
    token_event,
    websocket_event,
)
from server.auth.lambda_output import MalformedResult, Verdict, decide, parse_verdict
from server.config.model import ApiConfig, ApiKind, AuthorizerConfig, AuthorizerType
from server.errors import AccessDenied, AuthorizerConfigurationError, Unauthorized
from server.store.base import Store, StoreError

__all__ = ["MAX_TIMEOUT_MS", "LambdaAuthorizer"]

log = logging.getLogger("portway.auth")

MAX_TIMEOUT_MS = 10_000  # AWS's Lambda authorizer timeout (HTTP API); REST's is no longer
_PARSED_MAX = 4096


class LambdaAuthorizer:
    """One declared Lambda authorizer of one API (its cache is shared by every route naming it)."""

    def __init__(
        self, config: AuthorizerConfig, api: ApiConfig, invoker: LambdaInvoker, store: Store | None
    ) -> None:
        function = config.function
        if function is None:
            raise ValueError(f"authorizer {config.name!r} has no function")
        self.name = config.name
        self._invoker = invoker
        self._store = store
        self._kind = api.kind
        self._token = config.type is AuthorizerType.TOKEN
        self._payload = config.payload_format
        self._simple = api.kind is ApiKind.HTTP and config.simple_responses
        self._sources = tuple(parse_identity_source(text, api.kind) for text in config.identity_sources)
        self._pattern = re.compile(config.identity_validation) if config.identity_validation else None
        self._timeout_s = min(function.timeout_ms, MAX_TIMEOUT_MS) / 1000
        self._ttl = config.ttl_s if self._sources else 0  # no identity: nothing to key a cache on
        self._prefix = f"auth:{api.id}:{config.name}:"
        # Per node, bounded: parsed responses by their cached bytes, decisions by (cached bytes,
        # method ARN), cache keys by identity values. A cache hit then costs the identity lookup,
        # one store read and one dict lookup (bench/bench_auth.py); the store stays the only cache
        # of what the function answered, so every node sees the same answer for an identity.
        self._parsed: dict[bytes, Verdict] = {}
        self._decisions: dict[tuple[bytes, str], AuthResult | str] = {}
        self._keys: dict[tuple[str, ...], str] = {}
        self.invocations = 0

    async def authorize(self, request: AuthRequest) -> AuthResult:
        values = identity_values(self._sources, request.info, self._kind, request.connection_id)
        if values is None:
            raise Unauthorized()
        if self._pattern is not None and not self._pattern.fullmatch(values[0]):
            raise Unauthorized()
        key = self._cache_key(values) if self._ttl else None
        if key is not None:
            cached = await self._cached(key)
            if cached is not None:
                return self._decide_cached(cached, request.method_arn)
        started = time.monotonic()
        raw = await self._invoke(self._event(request, values), request.info.request_id)
        latency_ms = int((time.monotonic() - started) * 1000)
        try:
            encoded = orjson.dumps(raw)
            verdict = parse_verdict(raw, self._kind, simple=self._simple)
        except (MalformedResult, orjson.JSONEncodeError, TypeError) as exc:
            log.error("authorizer %s returned an invalid response: %s", self.name, exc)
            raise AuthorizerConfigurationError() from exc
        if key is not None:
            self._remember(encoded, verdict)
            await self._store_result(key, encoded)
        return decide(verdict, request.method_arn, self._kind, latency_ms)

    def _cache_key(self, values: tuple[str, ...]) -> str:
        key = self._keys.get(values)
        if key is None:
            digest = hashlib.sha256("\x00".join(values).encode("utf-8", "surrogatepass")).hexdigest()
            key = self._prefix + digest
            if len(self._keys) >= _PARSED_MAX:
                self._keys.clear()
            self._keys[values] = key
        return key

    def _decide_cached(self, cached: bytes, method_arn: str) -> AuthResult:
        """:func:`decide` for a cached response, remembered per (response, method ARN)."""
        memo = (cached, method_arn)
        known = self._decisions.get(memo)
        if known is None:
            try:
                known = decide(self._verdict(cached), method_arn, self._kind, 0)
            except AccessDenied as exc:
                known = exc.message or ""
            if len(self._decisions) >= _PARSED_MAX:
                self._decisions.clear()
            self._decisions[memo] = known
        if isinstance(known, str):
            raise AccessDenied(known or None)
        return known

    async def _cached(self, key: str) -> bytes | None:
        assert self._store is not None
        try:
            return await self._store.get(key)
        except StoreError as exc:  # unreachable: the function decides instead
            log.warning("authorizer %s: cache unavailable: %s", self.name, exc)
            return None

    async def _store_result(self, key: str, encoded: bytes) -> None:
        assert self._store is not None
        try:
            await self._store.set(key, encoded, ttl=self._ttl)
        except StoreError as exc:
            log.warning("authorizer %s: result not cached: %s", self.name, exc)

    def _verdict(self, cached: bytes) -> Verdict:
        verdict = self._parsed.get(cached)
        if verdict is None:
            try:
                verdict = parse_verdict(orjson.loads(cached), self._kind, simple=self._simple)
            except (MalformedResult, orjson.JSONDecodeError) as exc:
                # Another node (another version?) cached something this one cannot read.
                log.error("authorizer %s: unreadable cached result: %s", self.name, exc)
                raise AuthorizerConfigurationError() from exc
            self._remember(cached, verdict)
        return verdict

    def _remember(self, encoded: bytes, verdict: Verdict) -> None:
        if len(self._parsed) >= _PARSED_MAX:
            self._parsed.clear()
        self._parsed[encoded] = verdict

    def _event(self, request: AuthRequest, values: tuple[str, ...]) -> dict[str, Any]:
        if self._kind is ApiKind.WEBSOCKET:
            return websocket_event(request.info, request.method_arn, request.connection_id or "")
        if self._kind is ApiKind.HTTP:
            return http_event(request.info, request.method_arn, values, self._payload)
        if self._token:
            return token_event(values[0], request.method_arn)
        return rest_request_event(request.info, request.method_arn)

    async def _invoke(self, event: dict[str, Any], request_id: str) -> Any:
        self.invocations += 1
        try:
            return await self._invoker.invoke_event(event, request_id=request_id, timeout_s=self._timeout_s)
        except TimeoutError as exc:
            log.warning("authorizer %s: timed out after %.2f seconds", self.name, self._timeout_s)
            raise AuthorizerConfigurationError() from exc
        except FunctionError as exc:
            if exc.error_message == "Unauthorized":
                raise Unauthorized() from exc
            log.error("authorizer %s failed: %s: %s", self.name, exc.error_type, exc.error_message)
            raise AuthorizerConfigurationError() from exc
        except InvokeFailure as exc:
            log.error("authorizer %s could not run: %s", self.name, exc)
            raise AuthorizerConfigurationError() from exc

    async def close(self) -> None:
        # The invoker is shared with routes and closed by its registry.
        return None


def build_lambda_authorizer(config: AuthorizerConfig, api: ApiConfig, deps: AuthDeps) -> LambdaAuthorizer:
    if config.function is None or deps.invokers is None:
        raise ValueError(f"authorizer {config.name!r}: a Lambda authorizer needs a Python function")
    return LambdaAuthorizer(config, api, deps.invokers.get(config.function), deps.store)


BUILDERS[AuthorizerType.TOKEN] = build_lambda_authorizer
BUILDERS[AuthorizerType.REQUEST] = build_lambda_authorizer

"""An issuer's signing keys, fetched asynchronously and cached (aws-contract.md §5.4).

Where the keys are: the configured ``jwks_uri``, else the ``jwks_uri`` of the issuer's OpenID
discovery document (``{issuer}/.well-known/openid-configuration``). Each HTTP request has AWS's
limits: 1500 ms and at most 150,000 bytes of body.

When they are fetched: on the first token (not at start-up: an issuer that is down must not
stop the gateway), then again only when a token names a ``kid`` the cached set lacks (key
rotation), at most once per ``min_refresh_s``, failed attempts included (a flood of tokens with
made-up ``kid`` values cannot turn the gateway into a load generator against the issuer); the
first load does not start that interval. Concurrent misses share one
fetch. A failed refresh keeps the keys already known (stale keys beat no keys during an issuer
outage); with no keys at all, :class:`KeysUnavailable` is raised and the request is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from server.auth.jwt_verify import KeySet, parse_jwks

__all__ = ["DISCOVERY_PATH", "JwksSource", "KeysUnavailable"]

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
FETCH_TIMEOUT_S = 1.5
MAX_BODY_BYTES = 150_000
MIN_REFRESH_S = 30.0


class KeysUnavailable(Exception):
    """No key set could be fetched, and none is cached."""


class JwksSource:
    """The key set of one issuer. ``session``: an aiohttp session to use; None creates one on
    the first fetch, closed by :meth:`close`. ``clock``: monotonic seconds (tests move it)."""

    def __init__(
        self,
        issuer: str,
        jwks_uri: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = FETCH_TIMEOUT_S,
        max_bytes: int = MAX_BODY_BYTES,
        min_refresh_s: float = MIN_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._jwks_uri = jwks_uri
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_bytes = max_bytes
        self._min_refresh_s = min_refresh_s
        self._clock = clock
        self._keys: KeySet | None = None
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self.fetches = 0  # completed or failed fetch attempts (tests, metrics)

    @property
    def cached(self) -> KeySet | None:
        return self._keys

    async def keys(self) -> KeySet:
        """The cached keys; fetched first if there are none yet (rate limit permitting)."""
        if self._keys is None:
            await self._refresh()
        if self._keys is None:
            raise KeysUnavailable(f"no signing keys for {self.issuer}")
        return self._keys

    async def refresh_for(self, kid: str) -> KeySet:
        """The keys after a token named ``kid`` that the cache lacks: refetched unless a fetch
        started less than ``min_refresh_s`` ago."""
        current = self._keys
        if current is not None and kid in current:
            return current  # another request's refresh already brought it
        await self._refresh()
        return await self.keys()

    async def _refresh(self) -> None:
        if self._inflight is None:
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._min_refresh_s:
                return  # rate-limited: answer with what is cached
            self._last_attempt = now
            self._inflight = asyncio.create_task(self._fetch())
            self._inflight.add_done_callback(self._done)
        # shield: a cancelled request must not cancel the fetch the others wait for
        await asyncio.shield(self._inflight)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight = None

    async def _fetch(self) -> None:
        try:
            uri = self._jwks_uri or await self._discover()
            keys = parse_jwks(await self._get_json(uri))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("signing keys of %s not refreshed: %s", self.issuer, str(exc) or type(exc).__name__)
        else:
            if self._keys is None:
                # The first load does not start the refresh interval: a key rotated in just after
                # start-up is fetched by the first token using it (one extra fetch at most).
                self._last_attempt = None
            self._keys = keys
        finally:
            self.fetches += 1

    async def _discover(self) -> str:
        document = await self._get_json(self.issuer.rstrip("/") + DISCOVERY_PATH)
        uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise ValueError("the discovery document has no jwks_uri")
        self._jwks_uri = uri  # discovered once; the keys behind it are what rotates
        return uri

    async def _get_json(self, url: str) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.get(url, timeout=self._timeout, allow_redirects=False) as response:
            if response.status != 200:
                raise ValueError(f"GET {url} answered {response.status}")
            if (response.content_length or 0) > self._max_bytes:
                raise ValueError(f"GET {url}: body over {self._max_bytes} bytes")
            body = bytearray()
            while chunk := await response.content.read(65536):  # bounded by the byte limit
                body += chunk
                if len(body) > self._max_bytes:
                    raise ValueError(f"GET {url}: body over {self._max_bytes} bytes")
        return json.loads(body)

    async def close(self) -> None:
        task = self._inflight
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

"""API keys and throttling for WebSocket APIs: on ``$connect`` and on every message.

Reference: docs/aws-contract.md §3 (docs/websockets.md, "Throttling and API keys"). With ``apiKeyRequired`` on
``$connect``, the ``x-api-key`` header must name an enabled key in a usage plan covering this
API stage, else the handshake fails with 403 ``Forbidden``; checked once, it covers every later
message (as on AWS; the plan's *current* limits apply to each message). ``$connect`` then passes
its own levels (and, keyed, the plan's bucket and quota): refused, the handshake fails with 429.
Every routed message passes the levels an HTTP request to that route key would (one
:meth:`Store.admit <server.store.base.Store.admit>`, through the same
:class:`~server.throttle.admission.Admission` as HTTP, so one set of counters covers both); a
refused message gets the ``Too Many Requests`` / ``Limit Exceeded`` error frame and the socket
stays open, until ``flood_refusals`` refusals within ``flood_window_s`` close it with 1008.
Refusals caused by a store outage (``throttleFailure: closed``) never count as flooding.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from connections.core import MESSAGE_FLOOD
from connections.events import error_frame
from connections.registry import LocalConnection
from server.config.model import ApiConfig, GatewayConfig, StageConfig, UsagePlanConfig
from server.errors import GatewayError, InvalidApiKey, QuotaExceeded, Throttled
from server.keys.records import ApiKey
from server.keys.registry import KeyRegistry
from server.store.base import StoreUnavailable
from server.store.bucket import refill, take_tokens
from server.throttle.admission import Admission
from server.throttle.levels import Levels, ThrottleLevels

__all__ = ["FLOOD_CLOSE_CODE", "FLOOD_CLOSE_REASON", "WebSocketThrottle"]

log = logging.getLogger("portway.websocket")

FLOOD_CLOSE_CODE, FLOOD_CLOSE_REASON = MESSAGE_FLOOD  # 1008, policy violation (connections/core.py)


class WebSocketThrottle:
    """See the module docstring. ``keys`` None: every key check fails (403); ``admission``
    None: no throttling. Counter: ``flood_closes``."""

    def __init__(self, config: GatewayConfig, keys: KeyRegistry | None, admission: Admission | None) -> None:
        self._keys = keys
        self._levels = ThrottleLevels(config)
        self._account_on = config.account_throttle is not None
        self.admission = admission
        self.flood_closes = 0

    def applies(self, api: ApiConfig, stage: StageConfig, plan: UsagePlanConfig | None) -> bool:
        """Whether any level can apply to messages of a connection on ``stage`` (with ``plan``,
        its key's plan): False lets the message path skip throttling altogether."""
        if api.websocket.connection_throttle is not None:
            return True
        if self.admission is None:
            return False
        return (
            plan is not None or self._account_on or stage.throttle is not None or bool(stage.method_throttles)
        )

    async def admit_connect(
        self,
        api: ApiConfig,
        stage: StageConfig,
        headers: Mapping[str, str],
        now: float,
        *,
        key_required: bool,
        authorizer_key: str | None = None,
    ) -> tuple[str | None, ApiKey | None, UsagePlanConfig | None]:
        """(key value, key, plan) for a new connection, or raises the handshake's refusal
        (:class:`InvalidApiKey`, :class:`Throttled`, :class:`QuotaExceeded`). With
        ``apiKeySource: AUTHORIZER`` the key is ``authorizer_key`` (the authorizer's
        ``usageIdentifierKey``) instead of the ``x-api-key`` header."""
        value: str | None = None
        key: ApiKey | None = None
        plan: UsagePlanConfig | None = None
        if key_required:
            value = authorizer_key if api.api_key_source == "AUTHORIZER" else headers.get("x-api-key")
            registry = self._sync_keys()
            found = None if registry is None else registry.resolve(value, api.id, stage.name)
            if found is None:
                raise InvalidApiKey()
            key, plan = found
        if self.admission is not None:
            levels = self._levels_for(api, stage, "$connect", plan, key.id if key else None, now)
            if not levels.idle:
                await self.admission.decide(levels, now)
        return value, key, plan

    async def admit_message(
        self,
        conn: LocalConnection,
        api: ApiConfig,
        stage: StageConfig,
        route_key: str,
        request_id: str,
        now: float,
    ) -> bool:
        """Whether the message may run its route; when not, the refusal frame was sent (and
        the connection closed if it keeps flooding)."""
        own = conn.settings.connection_throttle
        if own is not None and refill(conn.bucket, own.rate, own.burst, now)[0] < 1:
            # The connection's own bucket (most specific of all, and local): nothing shared is
            # consulted or consumed for a message it refuses.
            await self._refuse(conn, Throttled(), request_id)
            return False
        admission = self.admission
        if admission is not None:
            plan = conn.plan
            if plan is not None:
                registry = self._sync_keys()
                if registry is not None:
                    # The key was checked once, at $connect (AWS); its plan's current limits apply.
                    plan = registry.plan(plan.id) or plan
            levels = self._levels_for(api, stage, route_key, plan, conn.info.api_key_id, now)
            if not levels.idle:  # no level applies (account bucket off): no store call
                try:
                    await admission.decide(levels, now)
                except (Throttled, QuotaExceeded) as exc:
                    await self._refuse(conn, exc, request_id)
                    return False
        if own is not None:
            conn.bucket = take_tokens(conn.bucket, rate=own.rate, burst=own.burst, now=now)[0]
        return True

    def _sync_keys(self) -> KeyRegistry | None:
        registry = self._keys
        if registry is not None:
            self._levels.at_version(registry.version)  # plans or keys changed: drop stale buckets
        return registry

    def _levels_for(
        self,
        api: ApiConfig,
        stage: StageConfig,
        route_key: str,
        plan: UsagePlanConfig | None,
        key_id: str | None,
        now: float,
    ) -> Levels:
        if plan is None or key_id is None:
            return self._levels.message_levels(api, stage, route_key)
        return self._levels.keyed_levels(api, stage, route_key, plan, key_id, now)

    async def _refuse(self, conn: LocalConnection, error: GatewayError, request_id: str) -> None:
        """Send the refusal frame; close the connection once it keeps flooding (1008)."""
        await conn.send_text(error_frame(error.message or "Too Many Requests", conn.id, request_id))
        if isinstance(error.__cause__, StoreUnavailable):
            return  # an outage refusing everything (throttleFailure closed) is not the client's flood
        flood = conn.core.refused(asyncio.get_running_loop().time())
        if flood is not None:
            if conn.close_code is None:
                self.flood_closes += 1
                log.info(
                    "closing %s: %s refused messages within %g s",
                    conn.id,
                    conn.settings.flood_refusals,
                    conn.settings.flood_window_s,
                )
            await conn.close(*flood)

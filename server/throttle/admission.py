"""One admission decision against the store, with the outage policy; shared by HTTP requests
and WebSocket messages.

When the store is unreachable, the API's ``throttle_failure`` (else the gateway's) decides:
``open`` (default, AWS's own behaviour for usage-plan checks) admits, ``closed`` refuses with 429.
Either way the outage is counted in ``store_errors`` and logged once when it starts and once when
it ends: never a crash, never a wait longer than the store's timeout.
"""

from __future__ import annotations

import logging
import math
import time
from typing import NoReturn

from server.errors import QuotaExceeded, Throttled
from server.request_metrics import Histogram
from server.store.base import Store, StoreUnavailable
from server.throttle.admit import AdmitDecision
from server.throttle.levels import Levels

__all__ = ["Admission", "rate_limit_headers"]

log = logging.getLogger("portway.throttle")


class Admission:
    """Counters: ``checked`` decisions asked, ``limited`` refused (429), ``store_errors``;
    ``store_latency``: seconds per store decision (``/@metrics``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.store_latency = Histogram()
        self._failing = False
        self.checked = 0
        self.limited = 0
        self.quota_limited = 0
        self.store_errors = 0

    @property
    def failing(self) -> bool:
        """The last decision found the store unreachable."""
        return self._failing

    async def decide(self, levels: Levels, now: float, *, raise_refusal: bool = True) -> AdmitDecision | None:
        """The store's decision (None: store unreachable and failing open). Refusals raise
        :class:`Throttled` / :class:`QuotaExceeded` unless ``raise_refusal`` is false."""
        self.checked += 1
        started = time.perf_counter()
        try:
            decision = await self._store.admit(levels.buckets, levels.quota, now=now, usage=levels.usage)
        except StoreUnavailable as exc:
            self.store_latency.observe(time.perf_counter() - started)
            self.store_errors += 1
            if not self._failing:
                self._failing = True
                log.warning(
                    "throttling store unavailable (%s): requests are admitted (throttleFailure open) "
                    "or refused with 429 (closed) until it returns",
                    exc,
                )
            if levels.fail_open:
                return None
            self.limited += 1
            raise Throttled() from exc
        self.store_latency.observe(time.perf_counter() - started)
        if self._failing:
            self._failing = False
            log.warning("throttling store available again")
        if not decision.allowed and raise_refusal:
            self.raise_refusal(levels, decision)
        return decision

    def raise_refusal(self, levels: Levels, decision: AdmitDecision) -> NoReturn:
        self.limited += 1
        if decision.failed == len(levels.buckets):
            self.quota_limited += 1
            raise QuotaExceeded()
        retry = decision.retry_after
        seconds = max(1, math.ceil(retry)) if math.isfinite(retry) else 86400
        raise Throttled(headers={"Retry-After": str(seconds)})


def rate_limit_headers(levels: Levels, decision: AdmitDecision | None, now: float) -> list[tuple[str, str]]:
    """``X-RateLimit-Limit/Remaining/Reset`` (opt-in; AWS sends none).

    With a quota they describe it: the period's allowance, what is left, and seconds until the
    period ends. Otherwise the most specific bucket: its burst, whole tokens left, and seconds
    until it is full again. Nothing when the store was unreachable.
    """
    if decision is None:
        return []
    window = levels.quota_window
    if window is not None and decision.quota_remaining is not None:
        reset = max(0, math.ceil(window.end - now))
        return [
            ("X-RateLimit-Limit", str(window.allowed)),
            ("X-RateLimit-Remaining", str(decision.quota_remaining)),
            ("X-RateLimit-Reset", str(reset)),
        ]
    if not levels.buckets:
        return []
    spec = levels.buckets[0]
    tokens = max(0.0, decision.remaining[0])
    missing = spec.burst - tokens
    reset = 0 if missing <= 0 or spec.rate <= 0 else math.ceil(missing / spec.rate)
    return [
        ("X-RateLimit-Limit", str(spec.burst)),
        ("X-RateLimit-Remaining", str(math.floor(tokens))),
        ("X-RateLimit-Reset", str(reset)),
    ]

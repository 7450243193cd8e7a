"""One admission decision for a whole request: every throttling level and the quota, at once.

Reference: docs/aws-contract.md §3.1 and §3.3. A request passes a list of token buckets, most
specific first (the caller passes AWS's order: API key through its usage plan, method/route,
stage, account), then the usage plan's quota for the current window. :func:`admit_state` is the
whole decision:

* every bucket is refilled to ``now`` and checked for ``cost`` tokens, then the quota counter
  for ``count + cost <= allowed``;
* all pass: ``cost`` is taken from every bucket and added to the quota counter and to the
  usage counter (per key per day, for GetUsage);
* any fails: nothing is taken or counted anywhere, so an upstream level never loses tokens to
  a request refused downstream; the decision names the first failure in the given order.

Stores apply it atomically (:meth:`server.store.base.Store.admit`): the embedded store in one
event-loop step, Redis in one Lua script (``ADMIT_LUA`` in :mod:`server.store.lua`, the same
operations in the same order, so both agree bit for bit).

Key scheme (Redis Cluster): a script may only touch keys of one hash slot, so every key of one
call must carry the same hash tag. Build them with :func:`throttle_key`: ``{tb}:acct``,
``{tb}:stage:<api>/<stage>``, ``{tb}:key:<keyId>``, ``{tb}:q:<plan>:<keyId>:<window>`` ...
(all throttling state lives in one slot, so one Redis Cluster shard serves it). Stores reject a
call whose keys do not share a tag, or repeat a key, with ValueError, on every backend alike.

Pure core: imports no I/O library; ``now`` (epoch seconds, the same clock on every node) is an
argument.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

from server.store.bucket import (
    MAX_TOKENS,
    BucketState,
    new_state,
    refill,
    validate_now_cost,
    validate_rate_burst,
    wait_time,
)
from server.throttle.quota import QuotaWindow

__all__ = [
    "QUOTA_TTL_MARGIN",
    "THROTTLE_TAG",
    "AdmitDecision",
    "BucketSpec",
    "QuotaSpec",
    "UsageSpec",
    "admit_state",
    "check_keys",
    "hash_tag",
    "new_decision",
    "throttle_key",
]

THROTTLE_TAG = "{tb}"
"""The Redis Cluster hash tag every throttling key starts with (see the module docstring)."""

QUOTA_TTL_MARGIN = 3600.0
"""Seconds a quota counter outlives its window: nodes whose clocks lag still find it."""


def throttle_key(*parts: str) -> str:
    """``throttle_key("q", plan, key_id, "20261125")`` -> ``"{tb}:q:<plan>:<key_id>:20261125"``."""
    return ":".join((THROTTLE_TAG, *parts))


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: the first non-empty ``{...}``, else the key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def _check_ttl(ttl: float) -> None:
    if isinstance(ttl, bool) or not (math.isfinite(ttl) and ttl > 0):
        raise ValueError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """A token bucket at ``key``: ``rate`` tokens per second, at most ``burst`` (validated here,
    so specs built once from configuration cost nothing per request)."""

    key: str
    rate: float
    burst: int
    tag: str = field(init=False, repr=False, compare=False)
    """:func:`hash_tag` of ``key`` (derived)."""

    def __post_init__(self) -> None:
        validate_rate_burst(self.rate, self.burst)
        object.__setattr__(self, "tag", hash_tag(self.key))


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    """The counter of one quota window at ``key``: ``allowed`` requests in it; the counter is
    created with a lifetime of ``ttl`` seconds (window end + margin, see :meth:`for_window`)."""

    key: str
    allowed: int
    ttl: float
    tag: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= operator.index(self.allowed) <= MAX_TOKENS:
            raise ValueError(f"allowed must be an int in [0, 2**53], got {self.allowed!r}")
        _check_ttl(self.ttl)
        object.__setattr__(self, "tag", hash_tag(self.key))

    @classmethod
    def for_window(
        cls, key: str, window: QuotaWindow, now: float, *, margin: float = QUOTA_TTL_MARGIN
    ) -> QuotaSpec:
        """The spec of ``window`` (from :func:`server.throttle.quota.quota_window`); ``key``
        should name the window, e.g. ``throttle_key("q", plan, key_id, window.key_suffix)``."""
        return cls(key, window.allowed, window.seconds_left(now) + margin)


@dataclass(frozen=True, slots=True)
class UsageSpec:
    """A usage counter (requests admitted, per key per day) created with ``ttl`` seconds."""

    key: str
    ttl: float
    tag: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_ttl(self.ttl)
        object.__setattr__(self, "tag", hash_tag(self.key))


@dataclass(frozen=True, slots=True)
class AdmitDecision:
    """Outcome of one admission.

    ``failed``: index of the first bucket that refused, ``len(buckets)`` if only the quota
    refused, None when allowed. ``retry_after``: seconds until that bucket holds ``cost`` tokens
    (``inf``: never); for the quota, its counter's ``ttl`` (an upper bound: the window end plus
    the margin; AWS sends no Retry-After for quotas); 0 when allowed. ``remaining``: tokens per
    bucket after this call. ``quota_used``/``quota_remaining``: the window's count after this
    call and what is left of ``allowed`` (None without a quota).
    """

    allowed: bool
    failed: int | None
    retry_after: float
    remaining: tuple[float, ...]
    quota_used: int | None
    quota_remaining: int | None


def check_keys(buckets: Sequence[BucketSpec], quota: QuotaSpec | None, usage: UsageSpec | None) -> list[str]:
    """Every key of the call, in KEYS order (buckets, quota, usage): distinct, one hash tag."""
    keys = [spec.key for spec in buckets]
    tags = {spec.tag for spec in buckets}
    if quota is not None:
        keys.append(quota.key)
        tags.add(quota.tag)
    if usage is not None:
        keys.append(usage.key)
        tags.add(usage.tag)
    if len(keys) > 1:
        if len(tags) != 1:
            raise ValueError(f"admit keys must share one hash tag such as {THROTTLE_TAG}, got {keys!r}")
        if len(set(keys)) != len(keys):
            raise ValueError(f"admit keys must be distinct, got {keys!r}")
    return keys


def admit_state(
    states: Sequence[BucketState | None],
    quota_count: int,
    buckets: Sequence[BucketSpec],
    quota: QuotaSpec | None = None,
    *,
    now: float,
    cost: int = 1,
) -> tuple[tuple[BucketState | None, ...], int, AdmitDecision]:
    """The reference decision: ``states[i]`` is bucket ``i``'s saved state (None: absent),
    ``quota_count`` the window's counter (0 when absent or without a quota).

    Returns the states to keep (None: delete the key), the new counter and the decision. When
    refused, the states and the counter are returned unchanged and nothing must be written.
    ``ADMIT_LUA`` mirrors this function; keep the operations and their order identical.
    """
    validate_now_cost(now, cost)
    if len(states) != len(buckets):
        raise ValueError("one state per bucket")
    failed: int | None = None
    retry_after = 0.0
    refilled: list[tuple[float, float]] = []
    for index, spec in enumerate(buckets):
        tokens, stamp = refill(states[index], spec.rate, spec.burst, now)
        refilled.append((tokens, stamp))
        if failed is None and not cost <= tokens:
            failed = index
            retry_after = wait_time(tokens, spec.rate, spec.burst, cost)
    if quota is not None and failed is None and cost > quota.allowed - quota_count:
        failed = len(buckets)
        retry_after = float(quota.ttl)
    if failed is not None:
        remaining = tuple(tokens for tokens, _ in refilled)
        refused = _decision(False, failed, retry_after, remaining, quota_count, quota)
        return tuple(states), quota_count, refused
    new_states: list[BucketState | None] = []
    left: list[float] = []
    for spec, (tokens, stamp) in zip(buckets, refilled, strict=True):
        tokens = tokens - cost
        left.append(tokens)
        # settle()'s rule without its reset_after, which only the store's TTL needs.
        new_states.append(None if tokens >= spec.burst else new_state(tokens, stamp))
    count = quota_count + cost if quota is not None else quota_count
    return tuple(new_states), count, _decision(True, None, 0.0, tuple(left), count, quota)


_NEW = object.__new__
_SETTERS = tuple(vars(AdmitDecision)[name].__set__ for name in AdmitDecision.__dataclass_fields__)


def new_decision(
    allowed: bool,
    failed: int | None,
    retry_after: float,
    remaining: tuple[float, ...],
    quota_used: int | None,
    quota_remaining: int | None,
) -> AdmitDecision:
    """``AdmitDecision(...)`` through the slots: the frozen ``__init__`` pays an
    ``object.__setattr__`` call per field (~1 µs here), on every request."""
    decision: AdmitDecision = _NEW(AdmitDecision)
    s_allowed, s_failed, s_retry, s_remaining, s_used, s_left = _SETTERS
    s_allowed(decision, allowed)
    s_failed(decision, failed)
    s_retry(decision, retry_after)
    s_remaining(decision, remaining)
    s_used(decision, quota_used)
    s_left(decision, quota_remaining)
    return decision


def _decision(
    allowed: bool,
    failed: int | None,
    retry_after: float,
    remaining: tuple[float, ...],
    count: int,
    quota: QuotaSpec | None,
) -> AdmitDecision:
    if quota is None:
        return new_decision(allowed, failed, retry_after, remaining, None, None)
    return new_decision(allowed, failed, retry_after, remaining, count, max(0, quota.allowed - count))

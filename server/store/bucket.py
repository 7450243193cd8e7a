"""Token-bucket arithmetic, shared by every store (pure: no I/O, no clock, no asyncio).

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second. A request costing
``cost`` tokens is admitted when that many tokens are present, and then removes them. A bucket
that has never been used, or whose state has expired, is full.

The Redis store runs the same computation as Lua (:mod:`server.store.lua`). The two must stay
operation-for-operation identical: IEEE doubles give bit-identical results only when the same
operations run in the same order, and ``tests/store`` checks that they agree exactly. If you
change :func:`refill`, :func:`wait_time` or :func:`settle`, change ``BUCKET_FUNCS`` in the same
commit. :mod:`server.throttle.admit` composes the same three steps over several buckets.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

__all__ = [
    "MAX_TOKENS",
    "BucketDecision",
    "BucketState",
    "new_state",
    "refill",
    "reset_after",
    "settle",
    "take_tokens",
    "validate_bucket_args",
    "validate_now_cost",
    "validate_rate_burst",
    "wait_time",
]

# Largest integer that a double (Lua's only number type) represents exactly; burst and cost
# beyond it would make the Python and Lua sides round differently.
MAX_TOKENS = 2**53


@dataclass(frozen=True, slots=True)
class BucketDecision:
    """Outcome of one :meth:`Store.take`.

    ``remaining`` is the (fractional) token count after this call; ``retry_after`` is how many
    seconds until ``cost`` tokens will exist (0 when allowed, ``inf`` when never: cost > burst
    or rate 0); ``reset_after`` is how many seconds until the bucket is full again (0 if full).
    """

    allowed: bool
    remaining: float
    retry_after: float
    reset_after: float


@dataclass(frozen=True, slots=True)
class BucketState:
    """What a store keeps per bucket: tokens at ``stamp`` (the caller's clock, seconds)."""

    tokens: float
    stamp: float


_NEW = object.__new__
_SET_TOKENS = vars(BucketState)["tokens"].__set__
_SET_STAMP = vars(BucketState)["stamp"].__set__


def new_state(tokens: float, stamp: float) -> BucketState:
    """``BucketState(tokens, stamp)`` through the slots: a frozen ``__init__`` pays an
    ``object.__setattr__`` call per field, twice the cost, on every admitted request."""
    state: BucketState = _NEW(BucketState)
    _SET_TOKENS(state, tokens)
    _SET_STAMP(state, stamp)
    return state


def validate_rate_burst(rate: float, burst: int) -> None:
    """Reject a bucket configuration the arithmetic (or its Lua mirror) cannot honour."""
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
    # operator.index rejects floats: fractional burst/cost are configuration bugs.
    if not 0 <= operator.index(burst) <= MAX_TOKENS:
        raise ValueError(f"burst must be an int in [0, 2**53], got {burst!r}")


def validate_now_cost(now: float, cost: int) -> None:
    if not 0 <= operator.index(cost) <= MAX_TOKENS:
        raise ValueError(f"cost must be an int in [0, 2**53], got {cost!r}")
    if not math.isfinite(now):
        raise ValueError(f"now must be finite, got {now!r}")


def validate_bucket_args(rate: float, burst: int, now: float, cost: int) -> None:
    """Reject arguments on which the bucket (or its Lua mirror) would be meaningless."""
    validate_rate_burst(rate, burst)
    validate_now_cost(now, cost)


# The three steps below each have a twin Lua function in server/store/lua.py (BUCKET_FUNCS):
# keep the operations and their order identical (float rounding).


def refill(state: BucketState | None, rate: float, burst: int, now: float) -> tuple[float, float]:
    """Tokens and stamp of the bucket at ``now``: refilled, capped at ``burst``.

    ``now`` may go backwards (another node's clock, NTP steps): then nothing is refilled and the
    stamp is kept, so the same interval is never refilled twice.
    """
    if state is None:
        tokens = float(burst)
        stamp = now
    else:
        tokens = state.tokens
        stamp = state.stamp
    added = 0.0
    if now > stamp:
        added = (now - stamp) * rate
        stamp = now
    tokens = tokens + added
    if tokens > burst:
        # Also clamps a bucket saved under a larger burst (configuration changed).
        tokens = float(burst)
    return tokens, stamp


def wait_time(tokens: float, rate: float, burst: int, cost: int) -> float:
    """Seconds until ``cost`` tokens exist in a bucket short of them (``inf``: never)."""
    if cost > burst or rate == 0:
        return math.inf
    return (cost - tokens) / rate


def settle(tokens: float, stamp: float, rate: float, burst: int) -> tuple[BucketState | None, float]:
    """The state to keep (None: full, delete the key) and seconds until the bucket is full."""
    if tokens >= burst:
        return None, 0.0
    return new_state(tokens, stamp), reset_after(tokens, rate, burst)


def reset_after(tokens: float, rate: float, burst: int) -> float:
    """Seconds until a bucket holding ``tokens`` (< ``burst``) is full again."""
    return math.inf if rate == 0 else (burst - tokens) / rate


def take_tokens(
    state: BucketState | None, *, rate: float, burst: int, now: float, cost: int = 1
) -> tuple[BucketState | None, BucketDecision]:
    """Refill the bucket up to ``now``, try to remove ``cost`` tokens; return the new state.

    The returned state is ``None`` when the bucket is full: a full bucket and an absent one are
    the same thing, so stores delete the key instead of keeping it. Otherwise the store should
    keep the state for ``decision.reset_after`` seconds (after that it would be full anyway).
    """
    validate_bucket_args(rate, burst, now, cost)
    tokens, stamp = refill(state, rate, burst, now)
    allowed = cost <= tokens
    retry_after = 0.0
    if allowed:
        tokens = tokens - cost
    else:
        retry_after = wait_time(tokens, rate, burst, cost)
    new_state, reset_after = settle(tokens, stamp, rate, burst)
    return new_state, BucketDecision(allowed, tokens, retry_after, reset_after)

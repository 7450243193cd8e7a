"""Token-bucket arithmetic, shared by every store (pure: no I/O, no clock, no asyncio).

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second. A request costing
``cost`` tokens is admitted when that many tokens are present, and then removes them. A bucket
that has never been used, or whose state has expired, is full.

The Redis store runs the same computation as a Lua script (:mod:`server.store.redis`). The two
must stay operation-for-operation identical: IEEE doubles give bit-identical results only when
the same operations run in the same order, and ``tests/store`` checks that they agree exactly.
If you change :func:`take_tokens`, change ``BUCKET_LUA`` in the same commit.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

__all__ = ["MAX_TOKENS", "BucketDecision", "BucketState", "take_tokens", "validate_bucket_args"]

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


def validate_bucket_args(rate: float, burst: int, now: float, cost: int) -> None:
    """Reject arguments on which the bucket (or its Lua mirror) would be meaningless."""
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
    # operator.index rejects floats: fractional burst/cost are configuration bugs.
    if not 0 <= operator.index(burst) <= MAX_TOKENS:
        raise ValueError(f"burst must be an int in [0, 2**53], got {burst!r}")
    if not 0 <= operator.index(cost) <= MAX_TOKENS:
        raise ValueError(f"cost must be an int in [0, 2**53], got {cost!r}")
    if not math.isfinite(now):
        raise ValueError(f"now must be finite, got {now!r}")


def take_tokens(
    state: BucketState | None, *, rate: float, burst: int, now: float, cost: int = 1
) -> tuple[BucketState | None, BucketDecision]:
    """Refill the bucket up to ``now``, try to remove ``cost`` tokens; return the new state.

    The returned state is ``None`` when the bucket is full: a full bucket and an absent one are
    the same thing, so stores delete the key instead of keeping it. Otherwise the store should
    keep the state for ``decision.reset_after`` seconds (after that it would be full anyway).

    ``now`` may go backwards (another node's clock, NTP steps): then nothing is refilled and the
    stamp is kept, so the same interval is never refilled twice.
    """
    validate_bucket_args(rate, burst, now, cost)
    # Every operation below has a twin in BUCKET_LUA; keep the order (float rounding).
    if state is None:
        tokens = float(burst)
        stamp = now
    else:
        tokens = state.tokens
        stamp = state.stamp
    refill = 0.0
    if now > stamp:
        refill = (now - stamp) * rate
        stamp = now
    tokens = tokens + refill
    if tokens > burst:
        # Also clamps a bucket saved under a larger burst (configuration changed).
        tokens = float(burst)

    allowed = cost <= tokens
    retry_after = 0.0
    if allowed:
        tokens = tokens - cost
    elif cost > burst or rate == 0:
        retry_after = math.inf
    else:
        retry_after = (cost - tokens) / rate

    if tokens >= burst:
        return None, BucketDecision(allowed, tokens, retry_after, 0.0)
    reset_after = math.inf if rate == 0 else (burst - tokens) / rate
    return BucketState(tokens, stamp), BucketDecision(allowed, tokens, retry_after, reset_after)

"""How Python talks to ``ADMIT_LUA``: the EVALSHA command, packed once per request, and its reply.

This runs for every throttled request, so it formats only numbers: the RESP form of each key is
cached, and the doubles travel raw (``struct``), exact and without text formatting or parsing.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from server.store.lua import ADMIT
from server.throttle.admit import AdmitDecision, BucketSpec, QuotaSpec, UsageSpec, new_decision

__all__ = ["AdmitCodec", "pack_now"]

_NOW = struct.Struct("<2d")
pack_now = _NOW.pack
"""``pack_now(cost, now)``: the first two doubles of ARGV[1] (see :meth:`AdmitCodec.prepare`)."""


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class AdmitCodec:
    """``ADMIT_LUA``'s EVALSHA command, packed, and its reply, decoded, for one namespace.

    The RESP form of each ``namespace + key`` is cached (up to ``cache_size`` keys, then the
    cache starts over), and so are the ``struct`` formats: the hot path formats only numbers.
    """

    def __init__(self, namespace: str, *, cache_size: int = 1 << 16) -> None:
        self._ns = namespace
        self._cache_size = cache_size
        self._keys: dict[str, bytes] = {}
        self._heads: dict[int, bytes] = {}
        self._structs: dict[int, struct.Struct] = {}

    def _struct(self, count: int) -> struct.Struct:
        fmt = self._structs.get(count)
        if fmt is None:
            fmt = self._structs[count] = struct.Struct(f"<{count}d")
        return fmt

    def argv(
        self,
        buckets: Sequence[BucketSpec],
        quota: QuotaSpec | None,
        usage: UsageSpec | None,
        now: float,
        cost: int,
    ) -> bytes:
        """ARGV[1] (see ``ADMIT_LUA``): every number, as doubles."""
        nums: list[float] = [cost, now]
        nums += (0, 0.0) if quota is None else (quota.allowed, quota.ttl)
        nums.append(0.0 if usage is None else usage.ttl)
        for spec in buckets:
            nums.append(spec.rate)
            nums.append(spec.burst)
        return self._struct(len(nums)).pack(*nums)

    def command(
        self,
        keys: Sequence[str],
        buckets: Sequence[BucketSpec],
        quota: QuotaSpec | None,
        usage: UsageSpec | None,
        now: float,
        cost: int,
    ) -> bytes:
        """``EVALSHA <sha> <len(keys)> <namespace + keys> <ARGV>`` in RESP."""
        head = self._heads.get(len(keys))
        if head is None:
            parts = [b"EVALSHA", ADMIT.sha.encode(), b"%d" % len(keys)]
            head = self._heads[len(keys)] = b"*%d\r\n" % (len(keys) + 4) + b"".join(map(_bulk, parts))
        out = [head]
        cached = self._keys
        for key in keys:
            bulk = cached.get(key)
            if bulk is None:
                if len(cached) >= self._cache_size:
                    cached.clear()
                bulk = cached[key] = _bulk((self._ns + key).encode())
            out.append(bulk)
        argv = self.argv(buckets, quota, usage, now, cost)
        out.append(b"$%d\r\n" % len(argv))
        out.append(argv)
        out.append(b"\r\n")
        return b"".join(out)

    def prepare(
        self,
        keys: Sequence[str],
        buckets: Sequence[BucketSpec],
        quota: QuotaSpec | None,
        usage: UsageSpec | None,
    ) -> tuple[bytes, bytes]:
        """(prefix, suffix) of :meth:`command` for these specs: the command for ``now`` and
        ``cost`` is ``prefix + pack_now(cost, now) + suffix`` (:data:`pack_now`), so a caller
        that admits the same specs again formats two numbers, nothing else."""
        whole = self.command(keys, buckets, quota, usage, 0.0, 0)
        argv_len = self._struct(len(buckets) * 2 + 5).size
        head_end = len(whole) - argv_len - 2  # the command ends with ARGV's bytes and CRLF
        return whole[:head_end], whole[head_end + _NOW.size : -2] + b"\r\n"

    def decision(self, reply: Any, buckets: Sequence[BucketSpec], quota: QuotaSpec | None) -> AdmitDecision:
        """The :class:`AdmitDecision` of a reply (what ``admit_state`` returns)."""
        failed_raw, count, packed = reply
        values = self._struct(len(buckets) + 1).unpack(packed)
        retry_after = values[0]
        remaining = values[1:]
        if failed_raw == 0:
            failed = None
        else:
            failed = failed_raw - 1
            if quota is not None and failed == len(buckets):
                retry_after = float(quota.ttl)
        if quota is None:
            return new_decision(failed is None, failed, retry_after, remaining, None, None)
        return new_decision(
            failed is None, failed, retry_after, remaining, count, max(0, quota.allowed - count)
        )

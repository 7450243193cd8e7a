"""Usage-plan quota periods: which window a request falls in, and how much it may use there.

Reference: docs/aws-contract.md §3.3. A quota allows ``limit`` requests per API key per period
(``DAY``, ``WEEK`` or ``MONTH``), summed across every stage of the plan. Periods are UTC calendar
periods (AWS does not document the boundaries: unverified, so they live in this one module):

* ``DAY``: 00:00 UTC to the next 00:00 UTC;
* ``WEEK``: from 00:00 UTC on ``week_start`` (0 = Sunday, as the older SDK docs number the days;
  1 = Monday) for 7 days;
* ``MONTH``: from 00:00 UTC on the 1st to the 1st of the next month.

``offset`` follows the current API reference: "the number of requests subtracted from the given
limit in the initial time period", i.e. the period that contains the plan's start.

Pure core: imports no I/O library; ``now`` (epoch seconds) is an argument.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["QuotaPeriod", "QuotaWindow", "quota_window"]

DAY_S = 86_400


class QuotaPeriod(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    """One period: ``[start, end)`` in epoch seconds, and the requests allowed in it."""

    start: int
    end: int
    allowed: int

    @property
    def key_suffix(self) -> str:
        """A stable name for the period, for store keys (``20261125`` = the UTC day it starts)."""
        return time.strftime("%Y%m%d", time.gmtime(self.start))

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.end - now)


def _period_bounds(period: QuotaPeriod, now: float, week_start: int) -> tuple[int, int]:
    day_start = int(now // DAY_S) * DAY_S
    if period is QuotaPeriod.DAY:
        return day_start, day_start + DAY_S
    if period is QuotaPeriod.WEEK:
        # time.gmtime: Monday is 0; convert to 0 = Sunday numbering, then step back to week_start.
        weekday_sun0 = (time.gmtime(day_start).tm_wday + 1) % 7
        start = day_start - ((weekday_sun0 - week_start) % 7) * DAY_S
        return start, start + 7 * DAY_S
    t = time.gmtime(day_start)
    start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return start, calendar.timegm((year, month, 1, 0, 0, 0))


def quota_window(
    period: QuotaPeriod,
    limit: int,
    now: float,
    *,
    offset: int = 0,
    plan_start: float | None = None,
    week_start: int = 0,
) -> QuotaWindow:
    """The period containing ``now`` and the requests allowed in it.

    ``offset`` is subtracted from ``limit`` only in the period that contains ``plan_start``.
    """
    if limit < 0 or offset < 0 or not 0 <= week_start <= 6:
        raise ValueError("limit and offset must be >= 0, week_start in 0..6")
    start, end = _period_bounds(period, now, week_start)
    allowed = limit
    if offset and plan_start is not None and start <= plan_start < end:
        allowed = max(0, limit - offset)
    return QuotaWindow(start, end, allowed)

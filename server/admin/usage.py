"""GetUsage arithmetic: daily ``[used, remaining]`` pairs from the per-key daily counters.

The throttle stage counts every admitted request of a keyed route per (plan, key, UTC day)
(:func:`server.throttle.levels.usage_key`, kept :data:`~server.throttle.levels.USAGE_DAYS`
days). For each day of the report:

* ``used``: that day's counter;
* ``remaining``: the quota allowance of the quota window (DAY, WEEK or MONTH, see
  :mod:`server.throttle.quota`) that contains the day, minus the usage of that window from its
  first day up to and including this day, never below 0; 0 when the plan has no quota.

So a report starting mid-window also reads the counters of the window's earlier days
(:func:`days_to_read`).

Pure core: imports no I/O library.
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Mapping

from server.config.model import QuotaSettings
from server.keys.records import InvalidRecord
from server.throttle.levels import usage_day
from server.throttle.quota import QuotaPeriod, quota_window

__all__ = ["MAX_DAYS", "daily_usage", "day_name", "days_to_read", "parse_date", "report_days"]

MAX_DAYS = 366
"""Longest report, in days (counters older than 90 days are gone anyway: they read as 0)."""


def parse_date(text: str | None, what: str) -> datetime.date:
    """``YYYY-MM-DD`` (GetUsage's ``startDate``/``endDate``)."""
    if not text:
        raise InvalidRecord(f"{what} is required (YYYY-MM-DD)")
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise InvalidRecord(f"{what}: {text!r} is not a date (YYYY-MM-DD)") from None


def day_name(day: datetime.date) -> str:
    """The day as usage counters name it (:func:`server.throttle.levels.usage_day`)."""
    return usage_day(_epoch(day))


def _epoch(day: datetime.date) -> int:
    return calendar.timegm(day.timetuple())


def report_days(start: datetime.date, end: datetime.date) -> list[datetime.date]:
    """Every day from ``start`` to ``end`` inclusive."""
    if end < start:
        raise InvalidRecord("endDate is before startDate")
    count = (end - start).days + 1
    if count > MAX_DAYS:
        raise InvalidRecord(f"a usage report covers at most {MAX_DAYS} days")
    return [start + datetime.timedelta(days=offset) for offset in range(count)]


def days_to_read(
    quota: QuotaSettings | None, plan_start: float | None, start: datetime.date, end: datetime.date
) -> list[datetime.date]:
    """The days whose counters the report needs: from the first day of ``start``'s quota
    window (or ``start`` without a quota) to ``end``."""
    days = report_days(start, end)
    if quota is None:
        return days
    window = quota_window(
        QuotaPeriod(quota.period), quota.limit, _epoch(start), offset=quota.offset, plan_start=plan_start
    )
    first = datetime.datetime.fromtimestamp(window.start, datetime.UTC).date()
    return [first + datetime.timedelta(days=offset) for offset in range((start - first).days)] + days


def daily_usage(
    quota: QuotaSettings | None,
    plan_start: float | None,
    start: datetime.date,
    end: datetime.date,
    counts: Mapping[str, int],
) -> list[list[int]]:
    """``[used, remaining]`` for each day from ``start`` to ``end``; ``counts`` maps a
    :func:`day_name` to that day's counter (missing: 0) for every day of :func:`days_to_read`."""
    result: list[list[int]] = []
    window_start: int | None = None
    window_used = 0
    for day in days_to_read(quota, plan_start, start, end):
        used = max(0, counts.get(day_name(day), 0))
        if quota is None:
            result.append([used, 0])
            continue
        epoch = _epoch(day)
        window = quota_window(
            QuotaPeriod(quota.period), quota.limit, epoch, offset=quota.offset, plan_start=plan_start
        )
        if window.start != window_start:
            window_start, window_used = window.start, 0
        window_used += used
        if day >= start:
            result.append([used, max(0, window.allowed - window_used)])
    return result

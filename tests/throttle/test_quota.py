"""Quota periods: UTC calendar boundaries, week start, offset in the initial period (aws-contract.md §3.3)."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.throttle.quota import QuotaPeriod, quota_window


def ts(*parts: int) -> int:
    return calendar.timegm((*parts, 0, 0, 0)[:6])


def test_day() -> None:
    w = quota_window(QuotaPeriod.DAY, 100, ts(2026, 11, 25, 13, 5, 7))
    assert (w.start, w.end, w.allowed) == (ts(2026, 11, 25, 0, 0, 0), ts(2026, 11, 26, 0, 0, 0), 100)
    assert w.key_suffix == "20261125"


def test_week_starts_sunday_by_default_or_monday() -> None:
    wednesday = ts(2026, 11, 25, 10, 0, 0)  # 2026-11-25 is a Wednesday
    assert quota_window(QuotaPeriod.WEEK, 1, wednesday).start == ts(2026, 11, 22, 0, 0, 0)  # Sunday
    assert quota_window(QuotaPeriod.WEEK, 1, wednesday, week_start=1).start == ts(2026, 11, 23, 0, 0, 0)
    sunday = ts(2026, 11, 22, 0, 0, 0)
    assert quota_window(QuotaPeriod.WEEK, 1, sunday).start == sunday


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (ts(2026, 1, 31, 23, 59, 59), ts(2026, 1, 1, 0, 0, 0), ts(2026, 2, 1, 0, 0, 0)),
        (ts(2026, 12, 1, 0, 0, 0), ts(2026, 12, 1, 0, 0, 0), ts(2027, 1, 1, 0, 0, 0)),
        (ts(2028, 2, 29, 12, 0, 0), ts(2028, 2, 1, 0, 0, 0), ts(2028, 3, 1, 0, 0, 0)),
    ],
)
def test_month(now: int, start: int, end: int) -> None:
    w = quota_window(QuotaPeriod.MONTH, 10, now)
    assert (w.start, w.end) == (start, end)


def test_offset_only_in_the_initial_period() -> None:
    plan_start = ts(2026, 11, 25, 9, 0, 0)
    first = quota_window(QuotaPeriod.DAY, 100, ts(2026, 11, 25, 20, 0, 0), offset=30, plan_start=plan_start)
    later = quota_window(QuotaPeriod.DAY, 100, ts(2026, 11, 26, 1, 0, 0), offset=30, plan_start=plan_start)
    assert (first.allowed, later.allowed) == (70, 100)


@given(
    st.sampled_from(list(QuotaPeriod)), st.integers(min_value=0, max_value=4_102_444_800), st.integers(0, 6)
)
def test_now_is_always_inside_its_window(period: QuotaPeriod, now: int, week_start: int) -> None:
    w = quota_window(period, 5, now, week_start=week_start)
    assert w.start <= now < w.end
    assert w.start % 86_400 == 0 and w.end % 86_400 == 0
    # The next period starts exactly where this one ends.
    assert quota_window(period, 5, w.end, week_start=week_start).start == w.end

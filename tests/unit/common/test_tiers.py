"""Billing periods around month ends and leap years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from paitient_common.tiers import DEFAULT_TIERS, format_time, period_bounds


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (datetime(2026, 11, 26, 12, tzinfo=UTC), "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        (
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
            "2026-12-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
        (datetime(2028, 2, 29, tzinfo=UTC), "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"),
        # 00:30 on 1 March in UTC+2 is still February in UTC.
        (
            datetime(2027, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            "2027-02-01T00:00:00Z",
            "2027-03-01T00:00:00Z",
        ),
    ],
)
def test_monthly_periods_are_calendar_months_in_utc(now: datetime, start: str, end: str) -> None:
    assert tuple(format_time(t) for t in period_bounds(now)) == (start, end)


def test_daily_periods() -> None:
    s, e = period_bounds(datetime(2026, 11, 26, 23, 59, tzinfo=UTC), "daily")
    assert (format_time(s), format_time(e)) == ("2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_bounds(datetime(2026, 1, 1))


def test_default_tiers_grow_from_free_to_enterprise() -> None:
    free, standard, enterprise = (DEFAULT_TIERS[n] for n in ("free", "standard", "enterprise"))
    assert not free.gpus_allowed and standard.gpus_allowed
    assert free.token_limit < standard.token_limit < enterprise.token_limit

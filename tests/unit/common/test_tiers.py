"""Billing periods around month ends and leap years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from paitient_common.tiers import DEFAULT_TIERS, Tier, format_time, period_bounds


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


def test_daily_periods_across_a_leap_day_and_the_year_end() -> None:
    s, e = period_bounds(datetime(2028, 2, 29, 5, tzinfo=UTC), "daily")
    assert (format_time(s), format_time(e)) == ("2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z")
    s, e = period_bounds(datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "daily")
    assert (format_time(s), format_time(e)) == ("2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        # February of a common year, a century that is not a leap year, and one that is.
        (
            datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC),
            "2027-02-01T00:00:00Z",
            "2027-03-01T00:00:00Z",
        ),
        (datetime(2100, 2, 28, tzinfo=UTC), "2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z"),
        (datetime(2000, 2, 29, 12, tzinfo=UTC), "2000-02-01T00:00:00Z", "2000-03-01T00:00:00Z"),
        # The very first instant of a month belongs to it; the last microsecond to the one before.
        (datetime(2026, 3, 1, tzinfo=UTC), "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        (
            datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
            "2026-02-01T00:00:00Z",
            "2026-03-01T00:00:00Z",
        ),
        # 23:30 on 31 January in UTC-5 is already February in UTC.
        (
            datetime(2026, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
            "2026-02-01T00:00:00Z",
            "2026-03-01T00:00:00Z",
        ),
    ],
)
def test_month_ends_and_leap_years(now: datetime, start: str, end: str) -> None:
    bounds = period_bounds(now, "monthly")
    assert tuple(format_time(t) for t in bounds) == (start, end)
    assert bounds[0] <= now < bounds[1]
    assert all(t.tzinfo is UTC for t in bounds)


def test_unknown_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown period 'weekly'"):
        period_bounds(datetime(2026, 1, 1, tzinfo=UTC), "weekly")  # type: ignore[arg-type]


def test_default_tiers_hold_the_documented_values() -> None:
    free, standard, enterprise = (DEFAULT_TIERS[n] for n in ("free", "standard", "enterprise"))
    assert set(DEFAULT_TIERS) == {"free", "standard", "enterprise"}
    assert (free.token_limit, free.requests_per_minute, free.tokens_per_minute) == (
        1_000_000,
        60,
        20_000,
    )
    assert (free.max_deployments, free.max_gpus, free.period) == (1, 0, "monthly")
    assert (standard.token_limit, standard.max_deployments, standard.max_gpus) == (10_000_000, 5, 8)
    assert (enterprise.token_limit, enterprise.requests_per_minute, enterprise.max_gpus) == (
        1_000_000_000,
        6_000,
        64,
    )


def test_tiers_read_camel_case_config_and_refuse_unknown_fields() -> None:
    tier = Tier.model_validate(
        {
            "tokenLimit": 5,
            "period": "daily",
            "requestsPerMinute": 1,
            "tokensPerMinute": 1,
            "maxDeployments": 0,
            "maxGpus": 0,
            "gpusAllowed": False,
        }
    )
    assert tier.period == "daily"
    with pytest.raises(ValueError):
        Tier.model_validate({**tier.model_dump(by_alias=True), "maxGPUs": 3})
    with pytest.raises(ValueError):
        Tier.model_validate({**tier.model_dump(by_alias=True), "period": "weekly"})

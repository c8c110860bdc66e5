"""Subscription tiers as data, and the billing period arithmetic (pure).

Tiers live in the operator's configuration (Helm values); these defaults apply when it names
none. The usage limit is in tokens (prompt + completion) per period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Period = Literal["monthly", "daily"]


class Tier(BaseModel):
    """What a tenant on this tier may use."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
        extra="forbid",
    )

    token_limit: int = Field(ge=0, description="Tokens (prompt + completion) per period.")
    period: Period = Field(default="monthly", description="Length of a billing period.")
    requests_per_minute: int = Field(ge=1, description="Requests per minute across the tenant.")
    tokens_per_minute: int = Field(ge=1, description="Tokens per minute across the tenant.")
    max_deployments: int = Field(ge=0, description="ModelDeployments the tenant may have.")
    max_gpus: int = Field(ge=0, description="GPUs across all of the tenant's replicas.")
    gpus_allowed: bool = Field(description="Whether deployments may use GPUs at all.")


DEFAULT_TIERS: dict[str, Tier] = {
    "free": Tier(
        token_limit=1_000_000,
        requests_per_minute=60,
        tokens_per_minute=20_000,
        max_deployments=1,
        max_gpus=0,
        gpus_allowed=False,
    ),
    "standard": Tier(
        token_limit=10_000_000,
        requests_per_minute=600,
        tokens_per_minute=200_000,
        max_deployments=5,
        max_gpus=8,
        gpus_allowed=True,
    ),
    "enterprise": Tier(
        token_limit=1_000_000_000,
        requests_per_minute=6_000,
        tokens_per_minute=2_000_000,
        max_deployments=50,
        max_gpus=64,
        gpus_allowed=True,
    ),
}


def period_bounds(now: datetime, period: Period = "monthly") -> tuple[datetime, datetime]:
    """[start, end) of the period containing ``now``, in UTC: a calendar month or day."""
    if now.tzinfo is None:
        raise ValueError("period_bounds needs a timezone-aware time")
    now = now.astimezone(UTC)
    if period not in ("monthly", "daily"):
        # Falling back to monthly would silently meter a misconfigured tier on the wrong clock.
        raise ValueError(f"unknown period {period!r}: use 'monthly' or 'daily'")
    if period == "daily":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


@lru_cache(maxsize=64)
def _cached_bounds(
    period: Period, year: int, month: int, day: int
) -> tuple[datetime, datetime, str]:
    start, end = period_bounds(datetime(year, month, day, 12, tzinfo=UTC), period)
    return start, end, format_time(start)


def current_period(now: datetime, period: Period = "monthly") -> tuple[datetime, datetime, str]:
    """``period_bounds`` plus the start as text, cached per day: gateways ask on every request."""
    utc = now.astimezone(UTC)
    return _cached_bounds(period, utc.year, utc.month, utc.day)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC at second precision (the form Kubernetes times take)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Admission of a request against its tenant's and its deployment's limits, and its settlement:
one interface (``Limits``) with two implementations.

- ``LocalLimits``: without a shared store, each replica alone (``limits.py``), today's bounds.
- ``SharedLimits`` (``shared_limits.py``): one atomic reservation in the shared store per
  request, exact across every replica; each replica's share while the store is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from paitient_common.apikeys import TenantInfo
from paitient_common.keycache.directory import TenantUsage
from paitient_common.store.limits import Bucket, Period
from paitient_common.tiers import Tier, current_period
from paitient_gateway.errors import LimitExceeded
from paitient_gateway.limits import Admission, RateLimiter, Reservation, UsageGuard
from paitient_gateway.report import UsageReporter

Mode = Literal["local", "store", "fallback"]


@dataclass
class Ticket:
    """What an admitted request holds until it settles (once)."""

    tenant: str
    period_start: str
    tokens: int
    headers: dict[str, str]
    mode: Mode
    # local: the replica's own buckets and usage reservation
    admission: Admission | None = None
    reservation: Reservation | None = None
    # store (and fallback, once recovered into the store): the reservation's id, period, buckets
    reservation_id: str = ""
    period: Period | None = None
    token_buckets: tuple[Bucket, ...] = ()
    # fallback: the local share's scope keys it took from
    shares: tuple[str, ...] = ()
    adopted: bool = False
    settled: bool = field(default=False)


@dataclass(frozen=True)
class Request:
    """What admission needs to know of one request."""

    request_id: str
    tenant: TenantInfo
    tier: Tier
    usage: TenantUsage | None  # the tenant's usage as Tenant.status last showed it
    tokens: int  # the request's maximum: prompt estimate + max_tokens x choices

    def period(self, now: datetime | None = None) -> tuple[datetime, str]:
        """(end, start as text) of the tenant's current period."""
        _, end, start = current_period(now or datetime.now(UTC), self.tier.period)
        return end, start

    @property
    def usage_limit(self) -> int | None:
        usage = self.usage
        return (
            usage.usage_limit if usage and usage.usage_limit is not None else self.tier.token_limit
        )

    def cluster_usage(self, period_start: str) -> int:
        """Tenant.status.currentUsage when it is of this period, else 0."""
        usage = self.usage
        return usage.current_usage if usage and usage.period_start == period_start else 0


class Limits(Protocol):
    async def admit(self, request: Request) -> Ticket:
        """A ticket, or ``LimitExceeded`` (429) when a limit refuses the request."""
        ...

    async def settle(self, ticket: Ticket, used: int) -> None:
        """The request ended having used ``used`` tokens (0: nothing to bill); once."""
        ...


class LocalLimits:
    """Every replica on its own (no shared store): rate buckets and usage reservations in this
    process; the usage limit sees the cluster's usage as Tenant.status last showed it plus this
    replica's own unreported usage (the multi-replica bound in docs/gateway.md)."""

    def __init__(
        self, deployment_rpm: int | None, deployment_tpm: int | None, reporter: UsageReporter
    ) -> None:
        self.limiter = RateLimiter(deployment_rpm, deployment_tpm)
        self.guard = UsageGuard()
        self.reporter = reporter

    async def admit(self, request: Request) -> Ticket:
        tenant, tier = request.tenant.name, request.tier
        now = datetime.now(UTC)
        end, period_start = request.period(now)
        admission = self.limiter.admit(
            tenant, tier.requests_per_minute, tier.tokens_per_minute, request.tokens
        )
        used = request.cluster_usage(period_start) + self.reporter.unreported(tenant, period_start)
        try:
            reservation = self.guard.reserve(
                tenant,
                period_start,
                request.usage_limit,
                used,
                request.tokens,
                (end - now).total_seconds(),
            )
        except LimitExceeded as exc:
            self.limiter.settle(admission, 0)
            exc.limit_headers = {**admission.headers, **exc.limit_headers}
            raise
        return Ticket(
            tenant, period_start, request.tokens, admission.headers, "local", admission, reservation
        )

    async def settle(self, ticket: Ticket, used: int) -> None:
        if ticket.settled:
            return
        ticket.settled = True
        if ticket.admission is not None:
            self.limiter.settle(ticket.admission, used)
        if ticket.reservation is not None:
            self.guard.release(ticket.reservation)

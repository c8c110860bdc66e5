"""Rate limits (requests and tokens per minute) and the period's usage limit, per replica (pure).

Rate limits are token buckets that refill a minute's allowance evenly over a minute. A request
takes one request and its token estimate (prompt estimate + max_tokens) when admitted, and the
token bucket is settled to the real usage after; a bucket may go into debt, so a request larger
than the remaining allowance is admitted only when the bucket is full enough to cover at most
its capacity, and the debt is paid back by waiting.

The usage limit reserves the same estimate before forwarding and releases it when the request
settles (its real usage is then in the ledger) or fails; admission compares
``cluster usage + own unreported usage + reservations + estimate`` with the limit, so concurrent
requests on one replica cannot overshoot it together.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from paitient_gateway.errors import LimitExceeded

Clock = Callable[[], float]


class TokenBucket:
    """``capacity`` per minute, refilled continuously; the level may go negative (debt).

    It starts full unless ``level`` is given (a replica's share of a shared bucket, while the
    store is unreachable, starts no fuller than the shared one was)."""

    def __init__(
        self, capacity: float, clock: Clock = time.monotonic, level: float | None = None
    ) -> None:
        self.capacity = capacity
        self.rate = capacity / 60.0
        self.clock = clock
        self.level = float(capacity) if level is None else min(float(capacity), level)
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(float(self.capacity), self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` can be taken (0 when it can be taken now)."""
        self._refill()
        need = min(cost, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, cost: float) -> None:
        self._refill()
        self.level -= cost

    def give_back(self, amount: float) -> None:
        """Return ``amount`` (negative takes more: a request used more than it reserved)."""
        self._refill()
        self.level = min(float(self.capacity), self.level + amount)

    def remaining(self) -> int:
        self._refill()
        return max(0, math.floor(self.level))

    def reset_seconds(self) -> float:
        """Seconds until the bucket is full again."""
        self._refill()
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass(frozen=True)
class LimitState:
    """One limit as the ``x-ratelimit-*`` headers show it."""

    kind: str  # "requests" or "tokens"
    limit: float
    remaining: int
    reset_seconds: float


def limit_headers(states: list[LimitState]) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers of the tightest limit of each kind (pure)."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        of_kind = [s for s in states if s.kind == kind]
        if not of_kind:
            continue
        tight = min(of_kind, key=lambda s: s.remaining)
        headers[f"x-ratelimit-limit-{kind}"] = str(math.floor(tight.limit))
        headers[f"x-ratelimit-remaining-{kind}"] = str(tight.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = format_reset(tight.reset_seconds)
    return headers


def format_reset(seconds: float) -> str:
    """OpenAI's form: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass
class Scope:
    """The request and token buckets of one tenant, or of the deployment."""

    requests: TokenBucket | None
    tokens: TokenBucket | None


@dataclass
class Admission:
    """What an admitted request holds, to settle or release later."""

    tenant: str
    tokens_reserved: int
    scopes: list[Scope] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False


class RateLimiter:
    """Per-tenant limits from the tier, per-deployment limits from the environment."""

    def __init__(
        self,
        deployment_rpm: int | None = None,
        deployment_tpm: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        self.deployment = Scope(
            TokenBucket(deployment_rpm, clock) if deployment_rpm else None,
            TokenBucket(deployment_tpm, clock) if deployment_tpm else None,
        )
        self.tenants: dict[str, Scope] = {}

    def _tenant(self, tenant: str, rpm: int, tpm: int) -> Scope:
        scope = self.tenants.get(tenant)
        if scope is None or scope.requests is None or scope.tokens is None:
            scope = Scope(TokenBucket(rpm, self.clock), TokenBucket(tpm, self.clock))
            self.tenants[tenant] = scope
        else:  # the tier changed: new capacity, same level (no free refill)
            for bucket, capacity in ((scope.requests, rpm), (scope.tokens, tpm)):
                if bucket.capacity != capacity:
                    bucket.capacity, bucket.rate = capacity, capacity / 60.0
        return scope

    def admit(self, tenant: str, rpm: int, tpm: int, tokens: int) -> Admission:
        """Take one request and ``tokens`` from every scope, or raise ``LimitExceeded``."""
        scopes = [self._tenant(tenant, rpm, tpm), self.deployment]
        waits: list[tuple[float, str]] = []
        for scope in scopes:
            if scope.requests is not None:
                waits.append((scope.requests.wait_for(1), "requests"))
            if scope.tokens is not None:
                waits.append((scope.tokens.wait_for(tokens), "tokens"))
        wait, which = max(waits)
        if wait > 0:
            raise LimitExceeded(
                f"rate limit exceeded ({which} per minute)",
                retry_after=wait,
                reason="rate_limit",
                limit_headers=self.headers(scopes),
            )
        for scope in scopes:
            if scope.requests is not None:
                scope.requests.take(1)
            if scope.tokens is not None:
                scope.tokens.take(tokens)
        return Admission(tenant, tokens, scopes, self.headers(scopes))

    def settle(self, admission: Admission, used_tokens: int) -> None:
        """Replace the estimate by the real usage (0 when the request failed)."""
        if admission.settled:
            return
        admission.settled = True
        for scope in admission.scopes:
            if scope.tokens is not None:
                scope.tokens.give_back(admission.tokens_reserved - used_tokens)

    @staticmethod
    def headers(scopes: list[Scope]) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers of the tightest scope of each kind."""
        return limit_headers(
            [
                LimitState(kind, b.capacity, b.remaining(), b.reset_seconds())
                for s in scopes
                for kind in ("requests", "tokens")
                if (b := getattr(s, kind)) is not None
            ]
        )


@dataclass
class Reservation:
    tenant: str
    period_start: str
    tokens: int
    released: bool = False


class UsageGuard:
    """Reservations against each tenant's usage limit for the period."""

    def __init__(self) -> None:
        self.reserved: dict[tuple[str, str], int] = {}

    def reserve(
        self,
        tenant: str,
        period_start: str,
        limit: int | None,
        used: int,
        tokens: int,
        retry_after: float,
    ) -> Reservation:
        """Reserve ``tokens`` unless ``used`` (cluster + own unreported) plus what is already
        reserved plus ``tokens`` would pass ``limit``."""
        key = (tenant, period_start)
        held = self.reserved.get(key, 0)
        if limit is not None and used + held + tokens > limit:
            raise LimitExceeded(
                "usage limit for the period reached", retry_after=retry_after, reason="usage_limit"
            )
        self.reserved[key] = held + tokens
        return Reservation(tenant, period_start, tokens)

    def release(self, reservation: Reservation) -> None:
        """Drop the hold: the real usage is in the ledger by now, or there was none."""
        if reservation.released:
            return
        reservation.released = True
        key = (reservation.tenant, reservation.period_start)
        left = self.reserved.get(key, 0) - reservation.tokens
        if left > 0:
            self.reserved[key] = left
        else:
            self.reserved.pop(key, None)

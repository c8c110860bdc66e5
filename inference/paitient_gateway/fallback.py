"""What one gateway may admit alone while the shared store is unreachable (pure).

Never open, never closed: each of the N gateways that could be admitting for a scope takes
``1 / N`` of it, so together they can only under-admit.

- **Rate limits**: a bucket of ``capacity / N`` per minute that starts empty (or in the debt the
  shared bucket was last seen in), never full: the shared bucket may have been drained the
  moment before the store went away, so a full local bucket could admit a minute's allowance
  twice.
- **The period's usage limit**: the headroom this gateway last saw, less everything the others
  could have reserved since without its knowing — at most the tenant's tokens bucket as it was
  then plus its refill since (every admission takes its tokens from that shared bucket first) —
  divided by N. A tenant this gateway never saw gets nothing until the store returns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from paitient_common.store.limits import Bucket
from paitient_gateway.errors import LimitExceeded
from paitient_gateway.limits import Clock, LimitState, TokenBucket, limit_headers

# A refusal by the local share may lift as soon as the store answers again.
FALLBACK_RETRY_AFTER = 5.0


@dataclass(frozen=True)
class SeenUsage:
    """A tenant's period as the store last showed this gateway, and when (monotonic)."""

    used: int
    reserved: int
    tokens_level: int
    seen_at: float


def usage_budget(
    limit: int | None,
    seen: SeenUsage | None,
    tokens_per_minute: int,
    now: float,
    replicas: int,
) -> float:
    """Tokens of a tenant's period this gateway may reserve alone (``inf``: no limit)."""
    if limit is None:
        return math.inf
    if seen is None:
        return 0.0
    unseen = max(0, seen.tokens_level) + tokens_per_minute / 60 * max(0.0, now - seen.seen_at)
    headroom = limit - seen.used - seen.reserved - unseen
    return max(0.0, headroom) / max(1, replicas)


@dataclass(frozen=True)
class ShareCost:
    """What a request takes from one shared bucket, and how many gateways share it."""

    bucket: Bucket
    cost: int
    replicas: int
    seen_level: int | None = None


@dataclass
class UsageShare:
    budget: float
    held: int = 0
    used: int = 0


class LocalShares:
    """This gateway's shares of every limit, for as long as the store is unreachable."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}
        self._starts: dict[str, tuple[float, float]] = {}  # key -> (level, when) at creation
        self.usage: dict[tuple[str, str], UsageShare] = {}

    def _bucket(self, cost: ShareCost) -> TokenBucket:
        bucket = self.buckets.get(cost.bucket.key)
        if bucket is None:
            replicas = max(1, cost.replicas)
            start = min(0.0, (cost.seen_level or 0) / replicas)
            bucket = TokenBucket(cost.bucket.capacity / replicas, self.clock, level=start)
            self.buckets[cost.bucket.key] = bucket
            self._starts[cost.bucket.key] = (bucket.level, bucket.updated)
        return bucket

    def admit(
        self,
        costs: Sequence[ShareCost],
        usage_key: tuple[str, str],
        budget: float,
        tokens: int,
    ) -> dict[str, str]:
        """Take from every share, or raise ``LimitExceeded`` and take nothing; the headers."""
        buckets = [(c, self._bucket(c)) for c in costs]
        waits = [(b.wait_for(c.cost), c.bucket.kind) for c, b in buckets]
        wait, kind = max(waits, default=(0.0, "requests"))
        headers = self.headers(buckets)
        if wait > 0:
            raise LimitExceeded(
                f"rate limit exceeded ({kind} per minute; this gateway's share while the shared "
                "store is unreachable)",
                retry_after=wait,
                reason="rate_limit",
                limit_headers=headers,
            )
        share = self.usage.setdefault(usage_key, UsageShare(budget))
        if share.used + share.held + tokens > share.budget:
            raise LimitExceeded(
                "usage limit for the period reached (this gateway's share while the shared "
                "store is unreachable)",
                retry_after=FALLBACK_RETRY_AFTER,
                reason="usage_limit",
                limit_headers=headers,
            )
        for cost, bucket in buckets:
            bucket.take(cost.cost)
        share.held += tokens
        return self.headers(buckets)

    def settle(
        self, token_keys: Sequence[str], usage_key: tuple[str, str], reserved: int, used: int
    ) -> None:
        """Give back to the tokens buckets what the request did not use; count its usage."""
        for key in token_keys:
            bucket = self.buckets.get(key)
            if bucket is not None:
                bucket.give_back(reserved - used)
        share = self.usage.get(usage_key)
        if share is not None:
            share.held = max(0, share.held - reserved)
            share.used += used

    def deficits(self) -> dict[str, float]:
        """What each share took and has not refilled yet (bucket key -> amount): the level an
        untouched share would have now, less the one it has. Charged to the shared buckets
        when the store returns, so that no minute's allowance is granted twice."""
        out = {}
        for key, bucket in self.buckets.items():
            bucket.wait_for(0)  # refilled up to now
            start, since = self._starts[key]
            untouched = min(bucket.capacity, start + (bucket.updated - since) * bucket.rate)
            if untouched - bucket.level > 0:
                out[key] = untouched - bucket.level
        return out

    @staticmethod
    def headers(buckets: Sequence[tuple[ShareCost, TokenBucket]]) -> dict[str, str]:
        return limit_headers(
            [
                LimitState(c.bucket.kind, b.capacity, b.remaining(), b.reset_seconds())
                for c, b in buckets
            ]
        )


class RecentUse:
    """What this gateway took from each shared bucket in the last minute, net of what it gave
    back, by second: if the store loses its data, each gateway charges its part into the new
    buckets, so that no minute's allowance is granted twice (a bucket never remembers more
    than a minute)."""

    WINDOW = 60

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self._slots: dict[str, dict[int, float]] = {}

    def add(self, bucket: Bucket, amount: float) -> None:
        now = int(self.clock())
        self.buckets[bucket.key] = bucket
        slots = self._slots.setdefault(bucket.key, {})
        slots[now] = slots.get(now, 0.0) + amount
        if len(slots) > self.WINDOW + 1:
            for second in [s for s in slots if s < now - self.WINDOW]:
                del slots[second]

    def totals(self) -> dict[str, float]:
        """Bucket key -> what was taken from it in the last minute (positive only)."""
        horizon = int(self.clock()) - self.WINDOW
        out = {}
        for key, slots in self._slots.items():
            total = sum(v for s, v in slots.items() if s >= horizon)
            if total > 0:
                out[key] = total
        return out

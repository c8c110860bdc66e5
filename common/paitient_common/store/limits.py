"""The client side of the store's limit scripts: reserve, settle, leases, the fallback view.

A reservation takes one request and the request's maximum tokens from every rate bucket and
the period's usage, atomically, or takes nothing (``reserve.lua``); settling gives back what the
request did not use and raises the gateway ledger's cumulative counter (``settle.lua``). See
docs/gateway.md#limits for the algorithm and its guarantees.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from redis import exceptions as rexc

from paitient_common.store.connection import UNREACHABLE, Store
from paitient_common.store.keys import Kind, PeriodKeys, bucket_key

# A reservation whose gateway stopped renewing it (it died mid-request) is freed after this.
LEASE_SECONDS: Final = 60.0
ADMITTED: Final = 1
RATE_LIMITED: Final = 0
OVER_USAGE_LIMIT: Final = -1
# A store that blips is not a lost one: a reservation whose call failed (timed out, refused,
# reset: a CPU-starved node, a CNI re-syncing its rules) is sent again under the same id, which
# reserve.lua answers without taking twice (the first may or may not have been taken), up to
# this many calls in all; only then does the caller fall back to its share.
RESERVE_ATTEMPTS: Final = 3
# Before sending again after a failure that came at once (refused, reset), not after a timeout.
RETRY_PAUSE_SECONDS: Final = 0.2
TIMEOUTS: Final = (rexc.TimeoutError, TimeoutError)


@dataclass(frozen=True)
class Bucket:
    """One requests- or tokens-per-minute limit of a scope (a tenant, a deployment)."""

    scope: str
    kind: Kind
    capacity: int

    @property
    def key(self) -> str:
        return bucket_key(self.scope, self.kind)


@dataclass(frozen=True)
class Period:
    """A tenant's period: its keys and when they may go (the period's end, plus a day)."""

    keys: PeriodKeys
    expire_at_ms: int


@dataclass(frozen=True)
class BucketState:
    remaining: int
    reset_seconds: float


@dataclass(frozen=True)
class Reserved:
    """The store's answer to a reservation."""

    status: int
    wait_seconds: float
    refusing: Bucket | None
    used: int
    reserved: int
    buckets: tuple[tuple[Bucket, BucketState], ...]

    @property
    def admitted(self) -> bool:
        return self.status == ADMITTED


def parse_reserved(reply: Sequence[int], buckets: Sequence[Bucket]) -> Reserved:
    """``reserve.lua``'s reply as data (pure)."""
    status, wait_ms, refusing, used, reserved = (int(v) for v in reply[:5])
    states = tuple(
        (b, BucketState(int(reply[5 + 2 * i]), int(reply[6 + 2 * i]) / 1000))
        for i, b in enumerate(buckets)
    )
    return Reserved(
        status=status,
        wait_seconds=wait_ms / 1000,
        refusing=buckets[refusing - 1] if refusing > 0 else None,
        used=used,
        reserved=reserved,
        buckets=states,
    )


async def reserve(
    store: Store,
    period: Period,
    reservation_id: str,
    tokens: int,
    limit: int | None,
    floor: int,
    costs: Sequence[tuple[Bucket, int]],
    *,
    force: bool = False,
    lease_seconds: float = LEASE_SECONDS,
    attempts: int = RESERVE_ATTEMPTS,
) -> Reserved:
    """Reserve, or refuse and take nothing. A call that fails as ``UNREACHABLE`` is sent again
    under the same id, up to ``attempts`` calls in all; the last failure is raised."""
    args: list[str | int] = [
        reservation_id,
        tokens,
        -1 if limit is None else limit,
        floor,
        period.expire_at_ms,
        math.ceil(lease_seconds * 1000),
        "1" if force else "0",
    ]
    for bucket, cost in costs:
        args += [bucket.capacity, cost]
    keys = [period.keys.usage, period.keys.leases, *(b.key for b, _ in costs)]
    for attempt in range(1, max(1, attempts) + 1):
        try:
            reply = await store.call("reserve", keys, args)
            break
        except UNREACHABLE as exc:
            if attempt >= attempts:
                raise
            if not isinstance(exc, TIMEOUTS):
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
    return parse_reserved(reply, [b for b, _ in costs])


async def settle(
    store: Store,
    period: Period,
    reservation_id: str,
    counter: str,
    cumulative: int,
    give_back: Sequence[tuple[Bucket, int]] = (),
) -> bool:
    """Release ``reservation_id`` (``""``: none) and adjust the buckets; raise the counter to
    ``cumulative``. True when the reservation was still open."""
    args: list[str | int] = [reservation_id, counter, cumulative, period.expire_at_ms]
    for bucket, amount in give_back:
        args += [bucket.capacity, amount]
    keys = [period.keys.usage, period.keys.leases, *(b.key for b, _ in give_back)]
    reply = await store.call("settle", keys, args)
    return bool(int(reply[0]))


async def renew_leases(
    store: Store, leases: str, ids: Sequence[str], lease_seconds: float = LEASE_SECONDS
) -> None:
    """Push the deadline of open reservations (long streams) forward; ``XX``: only those that
    are still open, so a settled one is never brought back."""
    if not ids:
        return
    time_s, micros = await store.client.time()
    deadline = (time_s * 1000 + micros / 1000) + lease_seconds * 1000
    await store.client.zadd(leases, dict.fromkeys(ids, deadline), xx=True)


@dataclass(frozen=True)
class TenantView:
    """A tenant's period as the store last showed it (for the fallback's arithmetic)."""

    used: int
    reserved: int
    tokens_level: int


async def view(store: Store, tenants: Sequence[tuple[Period, Bucket]]) -> list[TenantView]:
    """Each tenant's usage, open reservations and tokens bucket level, in one round trip."""
    if not tenants:
        return []
    keys = [k for period, bucket in tenants for k in (period.keys.usage, bucket.key)]
    reply = await store.call("view", keys, [bucket.capacity for _, bucket in tenants])
    return [
        TenantView(int(reply[3 * i]), int(reply[3 * i + 1]), int(reply[3 * i + 2]))
        for i in range(len(tenants))
    ]


async def read_usage(store: Store, keys: PeriodKeys) -> int:
    """A period's settled usage (the greater of the counters' sum and the floor)."""
    total, floor = await store.client.hmget(keys.usage, ["sum", "floor"])
    return max(int(total or 0), int(floor or 0))

"""Limits exact across every gateway: one atomic reservation per request in the shared store,
settled as the response ends; each gateway's share of every limit while the store is
unreachable, reconciled when it returns.

- **Admit**: ``reserve.lua`` takes one request and the request's maximum tokens from the
  tenant's (and the deployment's) per-minute buckets and from the period's usage, or takes
  nothing and says which limit refused. No interleaving of any number of gateways can admit
  past a limit: each reservation is one script, and Redis runs scripts one at a time.
- **Settle**: after the ledger line is written and before the client gets the bytes that carry
  the usage, ``settle.lua`` releases the reservation, gives back what was not used and raises
  this ledger's cumulative counter: usage a client received is in the store at once.
- **A blip**: a reservation whose call fails (timed out, refused, reset) is sent again under
  the same id (taken once at most), and a failed heartbeat is tried again next beat, up to
  ``RESERVE_ATTEMPTS`` failures in a row: a starved node or a CNI re-syncing its rules is not
  a lost store.
- **Unreachable**: the last of those failures marks the store down (one log line, a metric); admission then
  takes this gateway's share of each limit (``fallback.py``), N from ``membership.py``. Settles
  that could not be sent wait. The heartbeat keeps trying; when it answers: the waiting settles
  are sent, the shares' consumption is charged to the shared buckets, requests admitted locally
  and still running are reserved in the store (unchecked: they were admitted), and the ledger's
  counters are raised to what it holds. Then admission returns to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from redis import exceptions as rexc

from paitient_common.keycache.directory import Directory
from paitient_common.logs import log_unexpected
from paitient_common.store import limits as shared
from paitient_common.store.connection import UNREACHABLE, Store
from paitient_common.store.health import StoreHealth
from paitient_common.store.keys import counter_field, deployment_scope, period_keys, tenant_scope
from paitient_common.store.limits import Bucket, Period, Reserved
from paitient_common.tiers import current_period
from paitient_gateway.admission import Request, Ticket
from paitient_gateway.errors import LimitExceeded
from paitient_gateway.fallback import (
    LocalShares,
    RecentUse,
    SeenUsage,
    ShareCost,
    usage_budget,
)
from paitient_gateway.ledger import UsageLedger
from paitient_gateway.limits import LimitState, limit_headers
from paitient_gateway.membership import Membership

log = logging.getLogger("paitient.gateway.limits")

# Store calls that fail count as the store being down; a script error is a bug, but it must
# not take admission down with it either: the share still applies.
FAILED: Final = (*UNREACHABLE, rexc.ResponseError)
KEEP_AFTER_PERIOD: Final = timedelta(days=1)
WHILE_DOWN: Final = "admitting on this gateway's share of each limit (1/N)"


def _expire_ms(period_end: datetime) -> int:
    return int((period_end + KEEP_AFTER_PERIOD).timestamp() * 1000)


@dataclass(frozen=True)
class DeploymentLimits:
    namespace: str
    name: str
    requests_per_minute: int | None
    tokens_per_minute: int | None


class SharedLimits:
    """``admission.Limits`` over the shared store; ``run`` keeps membership, views, leases and
    counters current until cancelled."""

    def __init__(
        self,
        store: Store,
        health: StoreHealth,
        deployment: DeploymentLimits,
        directory: Directory,
        ledger: UsageLedger,
        membership: Membership,
        on_fallback_admission: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.health = store, health
        self.deployment = deployment
        self.directory, self.ledger = directory, ledger
        self.membership = membership
        self.on_fallback_admission = on_fallback_admission
        self.shares: LocalShares | None = None
        self.seen: dict[tuple[str, str], SeenUsage] = {}
        self.open: dict[str, Ticket] = {}  # admitted through the store, not settled yet
        self.local_open: dict[str, Ticket] = {}  # admitted on a share, not settled yet
        self.waiting: list[tuple[Ticket, int]] = []  # settles the store did not take
        self._charged: dict[str, float] = {}
        self._share_buckets: dict[str, Bucket] = {}
        self.recent = RecentUse()  # what this gateway took from each bucket in the last minute
        self._pushed: dict[tuple[str, str], int] = {}  # counters last sent to the store
        self._epoch = ""
        self._rebuilding = self._recent_charged = False

    # -- which limits a request meets ------------------------------------------------------------

    def _costs(self, request: Request) -> list[tuple[Bucket, int]]:
        tenant, tier = tenant_scope(request.tenant.name), request.tier
        costs = [
            (Bucket(tenant, "requests", tier.requests_per_minute), 1),
            (Bucket(tenant, "tokens", tier.tokens_per_minute), request.tokens),
        ]
        dep = self.deployment
        scope = deployment_scope(dep.namespace, dep.name)
        if dep.requests_per_minute:
            costs.append((Bucket(scope, "requests", dep.requests_per_minute), 1))
        if dep.tokens_per_minute:
            costs.append((Bucket(scope, "tokens", dep.tokens_per_minute), request.tokens))
        return costs

    def counter(self) -> str:
        return counter_field(f"{self.membership.namespace}/{self.ledger.ledger_id}")

    # -- admission -----------------------------------------------------------------------------

    async def admit(self, request: Request) -> Ticket:
        if self.health.available:
            try:
                return await self._admit_in_store(request)
            except FAILED as exc:
                self.lost(exc)
        return self._admit_on_share(request)

    async def _admit_in_store(self, request: Request) -> Ticket:
        now = datetime.now(UTC)
        end, period_start = request.period(now)
        tenant = request.tenant.name
        period = Period(period_keys(tenant, period_start), _expire_ms(end))
        costs = self._costs(request)
        reservation_id = uuid.uuid4().hex
        try:
            result = await shared.reserve(
                self.store,
                period,
                reservation_id,
                request.tokens,
                request.usage_limit,
                request.cluster_usage(period_start),
                costs,
            )
        except FAILED:
            # Maybe taken, maybe not: released (if it was) when the store returns.
            phantom = Ticket(tenant, period_start, request.tokens, {}, "store")
            phantom.reservation_id, phantom.period = reservation_id, period
            phantom.token_buckets = tuple(b for b, _ in costs if b.kind == "tokens")
            self.waiting.append((phantom, 0))
            raise
        self._saw(tenant, period_start, result)
        headers = limit_headers(
            [
                LimitState(b.kind, b.capacity, s.remaining, s.reset_seconds)
                for b, s in result.buckets
            ]
        )
        if result.status == shared.RATE_LIMITED:
            kind = result.refusing.kind if result.refusing else "requests"
            raise LimitExceeded(
                f"rate limit exceeded ({kind} per minute)",
                retry_after=result.wait_seconds,
                reason="rate_limit",
                limit_headers=headers,
            )
        if result.status == shared.OVER_USAGE_LIMIT:
            raise LimitExceeded(
                "usage limit for the period reached",
                retry_after=(end - now).total_seconds(),
                reason="usage_limit",
                limit_headers=headers,
            )
        for bucket, cost in costs:
            self.recent.add(bucket, cost)
        ticket = Ticket(tenant, period_start, request.tokens, headers, "store")
        ticket.reservation_id, ticket.period = reservation_id, period
        ticket.token_buckets = tuple(b for b, _ in costs if b.kind == "tokens")
        self.open[reservation_id] = ticket
        return ticket

    def _saw(self, tenant: str, period_start: str, result: Reserved) -> None:
        level = result.buckets[1][1].remaining  # the tenant's tokens bucket (see _costs)
        self.seen[tenant, period_start] = SeenUsage(
            result.used, result.reserved, level, time.monotonic()
        )

    def _admit_on_share(self, request: Request) -> Ticket:
        if self.shares is None:
            self.shares = LocalShares()
        now = datetime.now(UTC)
        end, period_start = request.period(now)
        tenant = request.tenant
        tenant_n = self.membership.replicas_for_namespace(tenant.namespace)
        deployment_n = self.membership.replicas_of_deployment()
        seen = self.seen.get((tenant.name, period_start))
        shares = []
        for bucket, cost in self._costs(request):
            ours = bucket.scope == tenant_scope(tenant.name)
            level = seen.tokens_level if ours and seen and bucket.kind == "tokens" else None
            shares.append(ShareCost(bucket, cost, tenant_n if ours else deployment_n, level))
            self._share_buckets[bucket.key] = bucket
        budget = usage_budget(
            request.usage_limit,
            seen,
            request.tier.tokens_per_minute,
            time.monotonic(),
            tenant_n,
        )
        headers = self.shares.admit(shares, (tenant.name, period_start), budget, request.tokens)
        for share in shares:
            self.recent.add(share.bucket, share.cost)
        if self.on_fallback_admission is not None:
            self.on_fallback_admission()
        ticket = Ticket(tenant.name, period_start, request.tokens, headers, "fallback")
        ticket.reservation_id = uuid.uuid4().hex
        ticket.period = Period(period_keys(tenant.name, period_start), _expire_ms(end))
        ticket.token_buckets = tuple(s.bucket for s in shares if s.bucket.kind == "tokens")
        self.local_open[ticket.reservation_id] = ticket
        return ticket

    # -- settlement ------------------------------------------------------------------------------

    async def settle(self, ticket: Ticket, used: int) -> None:
        if ticket.settled:
            return
        ticket.settled = True
        for bucket in ticket.token_buckets:
            self.recent.add(bucket, used - ticket.tokens)
        if ticket.mode == "fallback" and not ticket.adopted:
            self.local_open.pop(ticket.reservation_id, None)
            if self.shares is not None:
                keys = [b.key for b in ticket.token_buckets]
                self.shares.settle(keys, (ticket.tenant, ticket.period_start), ticket.tokens, used)
            return  # the ledger's counter carries its usage to the store when it returns
        self.open.pop(ticket.reservation_id, None)
        self.local_open.pop(ticket.reservation_id, None)
        if not self.health.available:
            self.waiting.append((ticket, used))
            return
        try:
            await self._settle_in_store(ticket, used)
        except FAILED as exc:
            self.lost(exc)
            self.waiting.append((ticket, used))

    async def _settle_in_store(self, ticket: Ticket, used: int) -> None:
        assert ticket.period is not None
        await shared.settle(
            self.store,
            ticket.period,
            ticket.reservation_id,
            self.counter(),
            self.ledger.counters.total(ticket.tenant, ticket.period_start),
            [(b, ticket.tokens - used) for b in ticket.token_buckets],
        )

    # -- the store going and coming back ---------------------------------------------------------

    def lost(self, exc: BaseException) -> None:
        self.health.down(exc)

    async def recover(self) -> None:
        """Bring what happened while the store was away into it; then admit through it again.

        Each step is done once (a failure leaves the gateway on its shares and the next beat
        goes on from there) and awaits nothing when it has nothing to do, so the last pass,
        which found nothing, is followed by the switch with no await between: no request
        slips in on a share unseen. After a new epoch (the store lost its data) the counters,
        the last minute's use of each bucket and every open reservation are brought in, and
        admission waits until every live gateway has done the same (``settle_time``)."""
        epoch = self.membership.epoch
        rebuilt = bool(self._epoch) and epoch != self._epoch
        if rebuilt:
            log.error(
                "shared store %s lost its data (a new epoch): rebuilding it from this "
                "gateway's ledger and holds; admitting on shares meanwhile",
                self.store.settings.describe(),
            )
            self.health.down(ConnectionError("the store lost its data"))
            for ticket in self.open.values():
                ticket.adopted = False  # its reservation went with the data: bring it again
                self.local_open[ticket.reservation_id] = ticket
            self._pushed.clear()
            self._rebuilding, self._recent_charged = True, False
        self._epoch = epoch
        while await self._bring_in():
            pass
        if self.membership.epoch_age < self.membership.settle_time:
            return  # a young epoch: the other gateways may not have brought theirs in yet
        # Nothing awaited since the last pass found nothing to bring: switch now.
        self.shares, self._charged, self._rebuilding = None, {}, False
        self.local_open = {k: t for k, t in self.local_open.items() if not t.adopted}
        self.health.up()

    async def _bring_in(self) -> bool:
        """One pass over what the store lacks; True when something was brought in."""
        progress = False
        while self.waiting:
            ticket, used = self.waiting[0]
            await self._settle_in_store(ticket, used)
            self.waiting.pop(0)
            progress = True
        if self._rebuilding and not self._recent_charged:
            # The new buckets are empty of history: this gateway's last minute goes in (its
            # shares' use included, so their deficits so far count as charged).
            for key, amount in self.recent.totals().items():
                await shared.settle(
                    self.store, _no_period(), "", "", 0,
                    [(self.recent.buckets[key], -math.ceil(amount))],
                )  # fmt: skip
            self._recent_charged = True
            self._charged = self.shares.deficits() if self.shares is not None else {}
            progress = True
        elif self.shares is not None:
            for key, deficit in self.shares.deficits().items():
                extra = math.ceil(deficit - self._charged.get(key, 0.0))
                if extra > 0:
                    bucket = self._share_buckets[key]
                    await shared.settle(self.store, _no_period(), "", "", 0, [(bucket, -extra)])
                    self._charged[key] = self._charged.get(key, 0.0) + extra
                    progress = True
        for ticket in [t for t in self.local_open.values() if not t.adopted]:
            assert ticket.period is not None
            await shared.reserve(
                self.store, ticket.period, ticket.reservation_id, ticket.tokens, None, 0, (),
                force=True,
            )  # fmt: skip
            ticket.adopted = True
            self.open[ticket.reservation_id] = ticket
            progress = True
        return await self.push_counters(only_changed=True) or progress

    async def push_counters(self, only_changed: bool = False) -> bool:
        """Raise this ledger's counter of every tenant's current period to what it holds
        (idempotent: a counter only rises); True when something was sent."""
        now = datetime.now(UTC)
        pushes, values = [], {}
        for (tenant, period_start), counter in list(self.ledger.counters.entries.items()):
            info = self.directory.keys.tenant(tenant)
            if info is None:
                continue
            _, end, current = current_period(now, self.directory.tier(info.tier).period)
            if current != period_start:
                continue
            if only_changed and self._pushed.get((tenant, period_start)) == counter.total:
                continue
            values[tenant, period_start] = counter.total
            period = Period(period_keys(tenant, period_start), _expire_ms(end))
            pushes.append(shared.settle(self.store, period, "", self.counter(), counter.total))
        if not pushes:
            return False
        await asyncio.gather(*pushes)
        self._pushed.update(values)
        return True

    async def refresh_views(self) -> None:
        """Remember each served tenant's usage and tokens level, for the shares' arithmetic."""
        served = {self.membership.namespace, *self.directory.allowed_namespaces}
        now = datetime.now(UTC)
        wanted: list[tuple[str, str, Period, Bucket]] = []
        for name in list(self.directory.usage):
            info = self.directory.keys.tenant(name)
            if info is None or info.namespace not in served:
                continue
            tier = self.directory.tier(info.tier)
            _, end, start = current_period(now, tier.period)
            period = Period(period_keys(name, start), _expire_ms(end))
            bucket = Bucket(tenant_scope(name), "tokens", tier.tokens_per_minute)
            wanted.append((name, start, period, bucket))
        views = await shared.view(self.store, [(p, b) for _, _, p, b in wanted])
        seen_at = time.monotonic()
        for (name, start, _, _), view in zip(wanted, views, strict=True):
            self.seen[name, start] = SeenUsage(view.used, view.reserved, view.tokens_level, seen_at)

    async def renew_leases(self) -> None:
        by_leases: dict[str, list[str]] = {}
        for ticket in list(self.open.values()):
            if ticket.period is not None:
                by_leases.setdefault(ticket.period.keys.leases, []).append(ticket.reservation_id)
        for leases, ids in by_leases.items():
            await shared.renew_leases(self.store, leases, ids)

    def served_namespaces(self) -> set[str]:
        return {self.membership.namespace, *self.directory.allowed_namespaces}

    async def run(self, interval: float, counters_every: float) -> None:
        """Beat, recover, refresh, renew and push, every ``interval``, until cancelled."""
        last_push = last_renew = 0.0
        failed_beats = 0
        while True:
            try:
                await self.membership.beat(self.store, self.served_namespaces())
                if not self.health.available or self.membership.epoch != self._epoch:
                    await self.recover()  # or the first contact: nothing to bring in then
                await self.refresh_views()
                now = time.monotonic()
                if now - last_renew >= shared.LEASE_SECONDS / 3:
                    await self.renew_leases()
                    last_renew = now
                if now - last_push >= counters_every:
                    await self.push_counters()
                    last_push = now
                failed_beats = 0
            except UNREACHABLE as exc:
                # A store that blips is not a lost one: as a reservation does, the beat gives
                # up on it only after RESERVE_ATTEMPTS failures in a row.
                failed_beats += 1
                if failed_beats >= shared.RESERVE_ATTEMPTS or not self.health.available:
                    self.lost(exc)
            except FAILED as exc:
                self.lost(exc)
            except Exception as exc:  # a bug must not end the beat: log it, beat again
                log_unexpected(log, exc, "the shared store's heartbeat")
            await asyncio.sleep(interval)

    async def leave(self) -> None:
        """SIGTERM: stop counting this gateway at once (best effort)."""
        if self.health.available:
            with contextlib.suppress(*FAILED):
                await self.membership.leave(self.store, self.served_namespaces())

    def unready_reason(self) -> str | None:
        if not self.health.ever_up:
            return f"the shared store has not answered yet ({self.health.reason})"
        if not self.membership.settled_in():
            return "joining the shared store's gateways"
        return None


def _no_period() -> Period:
    """The keys of no period: an adjustment that touches only buckets."""
    return Period(period_keys("-", "-"), 0)

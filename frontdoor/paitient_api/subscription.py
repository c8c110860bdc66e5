"""``GET /v1/subscription``: the tier, the limit and the usage of the caller's period.

The usage comes from the shared store when there is one: every gateway settles a request
there before its client gets the usage, so a request's tokens show here the moment its response
has ended, on every front-door replica. Tenant.status (the operator's roll-up of the gateways'
UsageReports, the durable record) is the floor, and the answer when the store is unreachable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from redis import exceptions as rexc

from paitient_api.door import FrontDoor
from paitient_api.request_context import answer, caller
from paitient_api.schemas import Subscription
from paitient_common.store.connection import UNREACHABLE
from paitient_common.store.keys import period_keys
from paitient_common.store.limits import read_usage
from paitient_common.tiers import Period, current_period, format_time

TENANT = ("paitient.ai/v1alpha1", "Tenant")


def usage_answer(
    status: dict[str, Any], tier: str, stored: int | None, now: datetime, period: Period
) -> Subscription:
    """The subscription from Tenant.status and the store's settled usage of the current period
    (``None``: no store, or unreachable) (pure)."""
    _, end, start = current_period(now, period)
    same_period = status.get("periodStart") == start
    recorded = int(status.get("currentUsage") or 0) if same_period else 0
    if stored is None:
        return Subscription(
            tier=str(status.get("tier") or tier),
            current_usage=int(status.get("currentUsage") or 0),
            usage_limit=int(status.get("usageLimit") or 0),
            period_start=status.get("periodStart"),
            period_end=status.get("periodEnd"),
        )
    return Subscription(
        tier=str(status.get("tier") or tier),
        current_usage=max(recorded, stored),
        usage_limit=int(status.get("usageLimit") or 0),
        period_start=start,
        period_end=format_time(end),
    )


async def subscription(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    tenant = caller(request)
    obj = await door.k8s(door.kube.get, *TENANT, tenant.name) or {}
    status = obj.get("status") or {}
    now = datetime.now(UTC)
    period = door.callers.tier(tenant.tier).period
    stored: int | None = None
    health = door.store_health
    if door.store is not None and health is not None and health.available:
        _, _, start = current_period(now, period)
        try:
            stored = await read_usage(door.store, period_keys(tenant.name, start))
        except (*UNREACHABLE, rexc.ResponseError) as exc:
            health.down(exc)  # Tenant.status answers meanwhile
    return answer(usage_answer(status, tenant.tier, stored, now, period))

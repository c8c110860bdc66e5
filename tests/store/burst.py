"""Many asyncio clients reserving at once against one store, in this process or as a worker
process (``python -m tests.store.burst``): each reservation is one ``reserve.lua`` call, each
admitted one optionally settled at once with a given usage; the outcome counts as JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass

from paitient_common.settings import Settings, load
from paitient_common.store import limits
from paitient_common.store.connection import Store
from paitient_common.store.keys import period_keys
from paitient_common.store.limits import Bucket, Period
from paitient_common.store.settings import SharedStoreSettings

PERIOD_START = "2026-12-01T00:00:00Z"
EXPIRE_AT_MS = 4_102_444_800_000  # 2100: far enough for a test


class _StoreOnly(SharedStoreSettings, Settings):
    """The store's settings alone, as a component reads them."""


@dataclass(frozen=True)
class Burst:
    tenant: str
    clients: int
    attempts: int  # per client
    tokens: int  # reserved per request
    usage_limit: int | None
    tokens_per_minute: int
    requests_per_minute: int
    settle_with: int | None = None  # settle each admitted request at once with this usage
    counter: str = "c:burst"


def period(tenant: str) -> Period:
    return Period(period_keys(tenant, PERIOD_START), EXPIRE_AT_MS)


async def run_burst(store: Store, burst: Burst) -> dict[str, int]:
    costs = [
        (Bucket(f"t:{burst.tenant}", "requests", burst.requests_per_minute), 1),
        (Bucket(f"t:{burst.tenant}", "tokens", burst.tokens_per_minute), burst.tokens),
    ]
    outcome = {"admitted": 0, "rate_limited": 0, "over_usage": 0, "settled_tokens": 0}
    counter = f"{burst.counter}:{uuid.uuid4().hex[:6]}"
    settled = 0

    async def client() -> None:
        nonlocal settled
        for _ in range(burst.attempts):
            result = await limits.reserve(
                store, period(burst.tenant), uuid.uuid4().hex, burst.tokens,
                burst.usage_limit, 0, costs,
            )  # fmt: skip
            key = {1: "admitted", 0: "rate_limited", -1: "over_usage"}[result.status]
            outcome[key] += 1
            if result.admitted and burst.settle_with is not None:
                settled += burst.settle_with  # this client's ledger, cumulative
                await limits.settle(store, period(burst.tenant), "", counter, settled)

    await asyncio.gather(*(client() for _ in range(burst.clients)))
    outcome["settled_tokens"] = settled
    return outcome


async def _main() -> None:
    settings = load(_StoreOnly).store  # PAITIENT_STORE_* of the worker's environment
    assert settings is not None
    store = Store(settings)
    try:
        burst = Burst(**json.loads(sys.argv[1]))
        await store.client.ping()
        sys.stdout.write(json.dumps(await run_burst(store, burst)) + "\n")
    finally:
        await store.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    asyncio.run(_main())

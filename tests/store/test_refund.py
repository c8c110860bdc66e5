"""What a request reserved and did not use goes back to its tenant's tokens bucket when it
settles: read from the shared store itself (each script stores the bucket as ``<level> <ms>``
with the store's own clock), so the arithmetic is exact however long anything took."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from paitient_common.store.keys import bucket_key, tenant_scope
from tests.integration.waiting import wait_for
from tests.standins.client import sync_call
from tests.standins.processes import configure_standin
from tests.store.gateways import TENANT, gateways, write_tenant
from tests.storeserver import RedisServer

TOKENS_PER_MINUTE = 30


def _bucket(raw: bytes) -> tuple[float, float]:
    level, updated = raw.decode().split()
    return float(level), float(updated)


def test_the_unused_part_of_a_reservation_goes_back_to_the_bucket(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    caller = write_tenant(keys, tokens_per_minute=TOKENS_PER_MINUTE, usage_limit=None)
    store = redis.Redis(host="127.0.0.1", port=redis_server.port, password=redis_server.password)
    tokens = bucket_key(tenant_scope(TENANT), "tokens")
    # A 12-byte prompt is estimated at 5 tokens but is one word (one token) to the stand-in:
    # the request reserves 5 + 20 and uses 1 + 20.
    body = {"prompt": "abcdefghijkl", "max_tokens": 20}
    try:
        with (
            gateways(tmp_path, keys, 1, redis_server.env()) as (standin, [gateway]),
            ThreadPoolExecutor(1) as pool,
        ):
            assert store.get(tokens) is None  # untouched: a full bucket
            configure_standin(standin, latency=1.0)  # in flight while the reservation is read
            answer = pool.submit(
                sync_call, "POST", f"{gateway.url}/v1/completions", body,
                headers=caller.headers(),
            )  # fmt: skip
            reserved = wait_for(lambda: store.get(tokens), interval=0.01, what="the reserve")
            done = answer.result(timeout=60)
            settled = store.get(tokens)
    finally:
        store.close()

    assert done.status == 200, done.body
    used = done.json()["usage"]["total_tokens"]
    assert used == 21
    level, at = _bucket(reserved)
    assert level == TOKENS_PER_MINUTE - 25  # the reservation, taken from a full bucket
    assert settled is not None
    after, settled_at = _bucket(settled)
    refill = (settled_at - at) * TOKENS_PER_MINUTE / 60_000  # per ms, the store's clock
    # At settling: what refilled meanwhile, and the 4 tokens reserved but not used, back (the
    # scripts store times with 14 significant digits: 10 µs, 0.000005 tokens here).
    assert after == pytest.approx(level + refill + (25 - used), abs=1e-4)

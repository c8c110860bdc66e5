"""The store's Lua scripts against a real redis-server: exact under a concurrent burst from many
asyncio clients in several processes, refunds once, counters that only rise, leases that free
what a dead gateway held, keys that expire."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from paitient_common.store import limits
from paitient_common.store.connection import Store
from paitient_common.store.keys import period_keys
from paitient_common.store.limits import Bucket, Period
from paitient_common.store.settings import parse_store_url
from tests.store.burst import Burst, period, run_burst
from tests.storeserver import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def store_of(server: RedisServer) -> Store:
    return Store(parse_store_url(server.url, server.password))


async def evalsha_calls(store: Store) -> int:
    """Scripts the server has run so far (``INFO commandstats``)."""
    stats = await store.client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_no_interleaving_of_clients_in_several_processes_admits_past_the_usage_limit(
    redis_server: RedisServer,
) -> None:
    """4 processes x 25 asyncio clients x 12 attempts reserve 7 tokens each against a limit of
    1,234: 1,200 attempts for room for exactly 176. Every process races every other."""
    burst = Burst(
        tenant=f"t{uuid.uuid4().hex[:8]}", clients=25, attempts=12, tokens=7,
        usage_limit=1234, tokens_per_minute=10**9, requests_per_minute=10**9,
    )  # fmt: skip
    env = {**os.environ, **redis_server.env()}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store.burst", json.dumps(asdict(burst))],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outcomes = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()[-2000:]
        outcomes.append(json.loads(out))
    admitted = sum(o["admitted"] for o in outcomes)
    assert sum(o["over_usage"] for o in outcomes) == 4 * 25 * 12 - admitted
    assert admitted == 1234 // 7  # never more, and nothing refused while there was room

    async def stored() -> tuple[int, int]:
        store = store_of(redis_server)
        try:
            reserved = await store.client.hget(period(burst.tenant).keys.usage, "reserved")
            return int(reserved), await limits.read_usage(store, period(burst.tenant).keys)
        finally:
            await store.close()

    assert run(stored()) == (admitted * 7, 0)


def test_the_tokens_bucket_admits_a_minutes_allowance_and_its_refill_no_more(
    redis_server: RedisServer,
) -> None:
    burst = Burst(
        tenant=f"t{uuid.uuid4().hex[:8]}", clients=50, attempts=10, tokens=10,
        usage_limit=None, tokens_per_minute=600, requests_per_minute=10**9,
    )  # fmt: skip

    async def scenario() -> tuple[dict[str, int], float]:
        store = store_of(redis_server)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            outcome = await run_burst(store, burst)
            return outcome, loop.time() - started
        finally:
            await store.close()

    outcome, elapsed = run(scenario())
    refill = 600 / 60 * elapsed
    assert outcome["admitted"] * 10 <= 600 + refill + 10  # the bucket, its refill, one in debt
    assert outcome["admitted"] >= 60 - 1  # a full bucket is given out before refusing
    assert outcome["rate_limited"] == 500 - outcome["admitted"]


def test_settling_gives_back_once_and_the_counter_only_rises(redis_server: RedisServer) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    p = period(tenant)
    tokens = Bucket(f"t:{tenant}", "tokens", 100)

    async def scenario() -> list[object]:
        store = store_of(redis_server)
        try:
            seen: list[object] = []
            first = await limits.reserve(store, p, "r1", 60, 100, 0, [(tokens, 60)])
            second = await limits.reserve(store, p, "r2", 60, 100, 0, [(tokens, 60)])
            seen += [first.status, first.buckets[0][1].remaining, second.status]
            seen.append(await limits.settle(store, p, "r1", "c:a", 15, [(tokens, 60 - 15)]))
            seen.append(await limits.settle(store, p, "r1", "c:a", 15, [(tokens, 60 - 15)]))
            seen.append(await limits.settle(store, p, "", "c:a", 10))  # late, lower: ignored
            again = await limits.reserve(store, p, "r3", 60, 100, 0, [(tokens, 60)])
            seen += [again.status, again.used, again.reserved]
            retried = await limits.reserve(store, p, "r3", 60, 100, 0, [(tokens, 60)])
            seen += [retried.status, retried.reserved]  # the same id: taken once
            return seen
        finally:
            await store.close()

    # 60 taken, 40 left; a second 60 refused (usage 60 + 60 > 100 would pass too, but the
    # bucket refuses first); settled at 15: 45 back, once; counter 15 stays 15.
    assert run(scenario()) == [1, 40, 0, True, False, False, 1, 15, 60, 1, 60]


def test_a_lease_that_runs_out_frees_what_a_dead_gateway_held(redis_server: RedisServer) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    p = period(tenant)

    async def scenario() -> tuple[int, int]:
        store = store_of(redis_server)
        try:
            held = await limits.reserve(store, p, "dead", 80, 100, 0, [], lease_seconds=0.2)
            refused = await limits.reserve(store, p, "alive", 80, 100, 0, [])
            await asyncio.sleep(0.3)
            admitted = await limits.reserve(store, p, "alive", 80, 100, 0, [])
            assert held.admitted
            return refused.status, admitted.status
        finally:
            await store.close()

    assert run(scenario()) == (limits.OVER_USAGE_LIMIT, limits.ADMITTED)


def test_the_floor_from_tenant_status_counts_and_never_twice(redis_server: RedisServer) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    p = period(tenant)

    async def scenario() -> list[int]:
        store = store_of(redis_server)
        try:
            await limits.settle(store, p, "", "c:pod-a", 30)
            first = await limits.reserve(store, p, "x", 1, 1000, 50, [])  # status says 50
            await limits.settle(store, p, "x", "c:pod-a", 31)
            second = await limits.reserve(store, p, "y", 1, 1000, 20, [])  # a stale status
            await limits.settle(store, p, "y", "c:pod-b", 40)
            return [first.used, second.used, await limits.read_usage(store, p.keys)]
        finally:
            await store.close()

    # used = max(sum of counters, the highest floor seen): 50, then 50, then max(71, 50).
    assert run(scenario()) == [50, 50, 71]


def test_every_key_expires(redis_server: RedisServer) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    p = Period(period_keys(tenant, "2026-12-01T00:00:00Z"), 4_102_444_800_000)
    bucket = Bucket(f"t:{tenant}", "tokens", 100)

    async def scenario() -> dict[str, int]:
        store = store_of(redis_server)
        try:
            await limits.reserve(store, p, "r", 10, 100, 0, [(bucket, 10)])
            keys = [k.decode() for k in await store.client.keys(f"paitient:*{tenant}*")]
            return {k: await store.client.pttl(k) for k in keys}
        finally:
            await store.close()

    ttls = run(scenario())
    assert set(ttls) == {p.keys.usage, p.keys.leases, bucket.key}
    assert all(ttl > 0 for ttl in ttls.values())  # -1 would be a key that never goes
    assert ttls[bucket.key] <= 60_000 * 10 / 100 + 1000  # gone once the bucket is full again


@pytest.mark.parametrize("capacity", [60, 6000])
def test_a_tier_change_keeps_the_level_and_takes_the_new_capacity(
    redis_server: RedisServer, capacity: int
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    p = period(tenant)

    async def scenario() -> int:
        store = store_of(redis_server)
        try:
            await limits.reserve(
                store, p, "a", 50, None, 0, [(Bucket(f"t:{tenant}", "tokens", 100), 50)]
            )
            after = await limits.reserve(
                store, p, "b", 1, None, 0, [(Bucket(f"t:{tenant}", "tokens", capacity), 1)]
            )
            return after.buckets[0][1].remaining
        finally:
            await store.close()

    # 50 left of 100; the new capacity keeps that level (no free refill), capped by it.
    assert run(scenario()) == min(50, capacity) - 1


def test_a_reservation_that_times_out_is_sent_again_and_taken_once(
    redis_server: RedisServer,
) -> None:
    """A store frozen (SIGSTOP) past one timeout and thawed within the next: the reservation,
    sent again under its id, is admitted and held once, though the server ran both sends."""
    tenant = f"t{uuid.uuid4().hex[:8]}"
    p = period(tenant)
    tokens = Bucket(f"t:{tenant}", "tokens", 1000)

    async def scenario() -> tuple[int, int, int, int]:
        store = Store(parse_store_url(redis_server.url, redis_server.password, timeout=0.3))
        try:
            await store.ping()  # connected and authenticated before the freeze
            calls_before = await evalsha_calls(store)
            redis_server.freeze()
            asyncio.get_running_loop().call_later(0.45, redis_server.thaw)
            slow = await limits.reserve(store, p, "slow", 25, 100, 0, [(tokens, 25)])
            held = int(await store.client.hget(p.keys.usage, "reserved"))
            sends = await evalsha_calls(store) - calls_before
            return slow.status, held, slow.buckets[0][1].remaining, sends
        finally:
            redis_server.thaw()
            await store.close()

    status, held, remaining, sends = run(scenario())
    assert (status, held, remaining) == (limits.ADMITTED, 25, 1000 - 25)
    assert sends >= 2  # the timed-out send ran too: without the id it would have taken twice


def test_a_store_that_stays_frozen_times_out_after_every_attempt(
    redis_server: RedisServer,
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"

    async def scenario() -> float:
        store = Store(parse_store_url(redis_server.url, redis_server.password, timeout=0.2))
        try:
            await store.ping()
            redis_server.freeze()
            started = asyncio.get_running_loop().time()
            with pytest.raises(limits.TIMEOUTS):
                await limits.reserve(store, period(tenant), "r", 1, 100, 0, [])
            return asyncio.get_running_loop().time() - started
        finally:
            redis_server.thaw()
            await store.close()

    assert run(scenario()) >= limits.RESERVE_ATTEMPTS * 0.2  # each attempt its own timeout


def test_a_reservation_refused_by_a_restarting_store_is_sent_again_to_the_new_one(
    redis_server: RedisServer,
) -> None:
    """The store stopped (its connections reset, new ones refused) and started again while a
    reservation is sent: the refused call is sent again after a pause and taken once."""
    tenant = f"t{uuid.uuid4().hex[:8]}"
    p = period(tenant)

    async def scenario() -> tuple[int, int]:
        store = store_of(redis_server)
        try:
            await store.ping()
            redis_server.stop()
            restarted = asyncio.create_task(asyncio.to_thread(redis_server.start))
            # Enough calls to outlast the restart on a busy machine; each failed call pauses.
            admitted = await limits.reserve(store, p, "r", 25, 100, 0, [], attempts=50)
            await restarted
            held = int(await store.client.hget(p.keys.usage, "reserved"))
            return admitted.status, held
        finally:
            await store.close()

    assert run(scenario()) == (limits.ADMITTED, 25)

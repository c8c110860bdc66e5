"""Gateway processes sharing one real redis-server: a tier's limits hold exactly across them
under a concurrent burst, usage is in the store the moment a response ends, and when the store
stops under load each gateway falls back to its share (never more), then reconciles."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.standins.processes import Proc
from tests.store.gateways import TENANT, gateways, metric, write_tenant
from tests.store.limit_load import LimitLoad
from tests.storeserver import RedisServer, stored_usage

USAGE_REFUSAL = "usage limit for the period reached"
RATE_REFUSAL = "rate limit exceeded (tokens per minute)"


def ledger_total(work: Path) -> int:
    total = 0
    for path in work.glob("ledger-*/usage-*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            total += record["prompt_tokens"] + record["completion_tokens"]
    return total


def burst(procs: list[Proc], headers: dict[str, str], **kw: object) -> LimitLoad:
    load = LimitLoad([f"{p.url}/v1/completions" for p in procs], headers, **kw)  # type: ignore[arg-type]
    return load


def test_a_burst_through_two_gateways_never_passes_the_usage_limit(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Each request reserves 11 tokens (its prompt's estimate and max_tokens) and uses 10; the
    limit leaves room for exactly 9 such answers: 90 tokens."""
    keys = tmp_path / "keys.json"
    caller = write_tenant(keys, tokens_per_minute=10**6, usage_limit=95)
    with gateways(tmp_path, keys, 2, redis_server.env()) as (_, procs):
        load = burst(procs, caller.headers(), clients=24)
        asyncio.run(load.run_for(attempts=6))
        usage_now = stored_usage(redis_server, TENANT)
        after = burst(procs, caller.headers(), clients=1)
        asyncio.run(after.run_for(attempts=2))  # everything settled: no room for 11 more
    assert load.statuses[200] == load.admitted
    assert 80 <= load.tokens <= 90  # overshoot 0 (95 is the limit; 8 fit at once)
    assert set(load.refusals) == {USAGE_REFUSAL}
    assert load.statuses[429] == 24 * 6 - load.admitted
    assert usage_now == load.tokens == ledger_total(tmp_path)  # in the store as each ended
    assert after.statuses == {429: 2} and set(after.refusals) == {USAGE_REFUSAL}


def test_a_burst_through_two_gateways_shares_one_tokens_per_minute_bucket(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    keys = tmp_path / "keys.json"
    caller = write_tenant(keys, tokens_per_minute=120, usage_limit=None)
    with gateways(tmp_path, keys, 2, redis_server.env()) as (_, procs):
        load = burst(procs, caller.headers(), clients=24)
        started = time.monotonic()
        asyncio.run(load.run_for(attempts=5))
        elapsed = time.monotonic() - started
    # A bucket of 120, its refill while the burst ran, and one request's debt (11): never two
    # buckets, as two replicas on their own would give.
    assert load.tokens <= 120 + 2 * elapsed + 11, (load.tokens, elapsed)
    assert load.tokens >= 120 - 11
    assert set(load.refusals) == {RATE_REFUSAL}


OUTAGE = 6  # seconds: a hung store is given up on after 3 timeouts of 0.5 s, then shares refill
TIMEOUT = {"PAITIENT_STORE_TIMEOUT_SECONDS": "0.5"}


@pytest.mark.parametrize("limit", ["rate", "usage"])
@pytest.mark.parametrize("outage", ["frozen", "restarted"])
def test_the_store_stopped_under_load_the_shares_hold_and_usage_reconciles(
    tmp_path: Path, redis_server: RedisServer, outage: str, limit: str
) -> None:
    """Tokens per minute 600 (10/s), and a usage limit of 680 or none: the burst empties the
    bucket at once (600), then runs on its refill; after 3 s (about 630 used: little headroom
    left) the store stops for ``OUTAGE`` s (SIGSTOP: it hangs, and the gateways fall back after
    three timeouts in a row, 1.5 s; or SIGTERM and a new, empty server: the gateways rebuild it from
    their ledgers and their last minute), then runs 4 s more."""
    keys = tmp_path / "keys.json"
    usage_limit = 680 if limit == "usage" else None
    caller = write_tenant(keys, tokens_per_minute=600, usage_limit=usage_limit)
    with gateways(tmp_path, keys, 2, {**redis_server.env(), **TIMEOUT}) as (_, procs):
        load = burst(procs, caller.headers(), clients=12, pause_after_refusal=0.05)

        async def scenario() -> None:
            running = asyncio.ensure_future(load.run_for())
            await asyncio.sleep(3)
            if outage == "frozen":
                redis_server.freeze()
            else:
                redis_server.stop()
            await asyncio.sleep(OUTAGE)
            if outage == "frozen":
                redis_server.thaw()
            else:
                await asyncio.to_thread(redis_server.start)
            await asyncio.sleep(4)
            load.stop()
            await running

        started = time.monotonic()
        asyncio.run(scenario())
        elapsed = time.monotonic() - started
        time.sleep(1.5)  # a beat or two: every counter pushed again
        pages = [
            urllib.request.urlopen(f"{p.url}/metrics", timeout=5).read().decode() for p in procs
        ]
        usage_after = stored_usage(redis_server, TENANT)
    assert not load.errors and not [s for s in load.statuses if s >= 500], load.statuses
    if usage_limit is None:  # never refused everything: the shares admitted meanwhile
        assert sum(metric(p, "paitient_gateway_fallback_admissions_total") for p in pages) > 0
    assert all(metric(p, "paitient_store_up") == 1 for p in pages)
    # The limits held throughout: one bucket and its refill (and a request of debt per
    # gateway), never two buckets; never past the usage limit.
    assert load.tokens <= 600 + 10 * elapsed + 2 * 11, (load.tokens, elapsed)
    if usage_limit is not None:
        assert load.tokens <= usage_limit
    assert all(m.startswith((RATE_REFUSAL[:-1], USAGE_REFUSAL)) for m in load.refusals)
    # Reconciled: what clients received is the tenant's usage in the store, and the ledgers'.
    assert usage_after == load.tokens == ledger_total(tmp_path)

"""Limits across replicas: how far a burst passes a tier's limit, with the shared store and with
today's per-replica design, in the same run; and what the store's round trip adds per request.

    python benchmarks/bench_limits.py [--smoke] [--requests 2000]

Two gateway processes in front of one vLLM stand-in (keys file, no cluster), with a real
redis-server (Debian's) on 127.0.0.1, and two more without it, in the same run:
  - overshoot of the period's usage limit (200 tokens) and of a tokens-per-minute limit (600)
    under a burst of 24 concurrent clients spread over both gateways of a pair;
  - latency through one gateway of each pair, sequential requests alternating between them (so
    both meet the same load), and the round trip of the reserve and settle scripts themselves
    (redis-py's asyncio client) beside a PING's.
The last line is a JSON summary. ``--smoke`` runs it all in seconds (a test runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.summary import print_summary  # noqa: E402
from paitient_common.store import limits  # noqa: E402
from paitient_common.store.connection import Store  # noqa: E402
from paitient_common.store.limits import Bucket  # noqa: E402
from paitient_common.store.settings import parse_store_url  # noqa: E402
from tests.standins.processes import Caller, Proc  # noqa: E402
from tests.store.burst import period  # noqa: E402
from tests.store.gateways import gateways, write_tenants  # noqa: E402
from tests.store.limit_load import LimitLoad  # noqa: E402
from tests.storeserver import RedisServer  # noqa: E402

USAGE_LIMIT = 200
TOKENS_PER_MINUTE = 600
Callers = dict[str, Caller]


@contextmanager
def two_gateways(work: Path, store: RedisServer | None) -> Iterator[tuple[list[Proc], Callers]]:
    """Two gateways (and a stand-in) for three tenants: ``usage`` (a usage limit of 200),
    ``rate`` (600 tokens a minute) and ``free`` (nothing in the way)."""
    work.mkdir(parents=True, exist_ok=True)
    keys = work / "keys.json"
    callers = write_tenants(
        keys,
        {"usage": (10**6, USAGE_LIMIT), "rate": (TOKENS_PER_MINUTE, None), "free": (10**9, None)},
        requests_per_minute=10**9,
    )
    with gateways(work, keys, 2, store.env() if store else {}) as (_, procs):
        yield procs, callers


def burst(procs: list[Proc], headers: dict[str, str], attempts: int) -> tuple[LimitLoad, float]:
    load = LimitLoad([f"{p.url}/v1/completions" for p in procs], headers, clients=24)
    started = time.monotonic()
    asyncio.run(load.run_for(attempts=attempts))
    return load, time.monotonic() - started


def overshoot(procs: list[Proc], callers: Callers, attempts: int) -> dict[str, Any]:
    """The usage limit's overshoot, then the tokens-per-minute limit's (over one bucket and
    its refill while the burst ran)."""
    usage, _ = burst(procs, callers["usage"].headers(), attempts)
    rate, elapsed = burst(procs, callers["rate"].headers(), attempts)
    allowed = TOKENS_PER_MINUTE + TOKENS_PER_MINUTE / 60 * elapsed
    return {
        "usage_admitted_tokens": usage.tokens,
        "usage_overshoot": max(0, usage.tokens - USAGE_LIMIT),
        "rate_admitted_tokens": rate.tokens,
        "rate_allowed_tokens": round(allowed),
        "rate_overshoot": max(0, round(rate.tokens - allowed)),
    }


async def _alternating(
    urls: tuple[str, str], headers: tuple[dict[str, str], dict[str, str]], requests: int
) -> tuple[list[float], list[float]]:
    """Sequential requests, one to each URL in turn, so that both meet the same load of the
    (shared, busy) machine: their medians differ by what the path itself adds."""
    body = {"prompt": "a", "max_tokens": 1}
    times: tuple[list[float], list[float]] = ([], [])
    async with aiohttp.ClientSession() as session:
        for n in range(requests + requests // 10):  # the first tenth warms up
            for which in (0, 1):
                started = time.perf_counter()
                async with session.post(urls[which], json=body, headers=headers[which]) as r:
                    await r.read()
                    assert r.status == 200, r.status
                if n >= requests // 10:
                    times[which].append(time.perf_counter() - started)
    return times


def cpu_seconds(proc: Proc) -> float:
    """User and system CPU time a process has used (its own, from /proc)."""
    fields = Path(f"/proc/{proc.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    work: Path, store: RedisServer, attempts: int, requests: int
) -> tuple[dict[str, Any], dict[str, Any], list[float], list[float], float]:
    """Overshoot under the bursts with the store and without it, then latency through one
    gateway of each, alternating; and the CPU the store's gateway spent more per request."""
    with (
        two_gateways(work / "store", store) as (ours, our_callers),
        two_gateways(work / "per-replica", None) as (theirs, their_callers),
    ):
        with_store_figures = overshoot(ours, our_callers, attempts)
        per_replica_figures = overshoot(theirs, their_callers, attempts)
        urls = (f"{ours[0].url}/v1/completions", f"{theirs[0].url}/v1/completions")
        headers = (our_callers["free"].headers(), their_callers["free"].headers())
        before = cpu_seconds(ours[0]), cpu_seconds(theirs[0])
        with_store, without = asyncio.run(_alternating(urls, headers, requests))
        extra_cpu = (cpu_seconds(ours[0]) - before[0]) - (cpu_seconds(theirs[0]) - before[1])
        total = requests + requests // 10
        return with_store_figures, per_replica_figures, with_store, without, extra_cpu / total


async def script_round_trips(
    server: RedisServer, requests: int
) -> tuple[list[float], list[float], list[float]]:
    """reserve.lua and settle.lua as the gateway calls them (tenant and deployment buckets),
    each next to a PING: the bare round trip of the same client on the same machine."""
    store = Store(parse_store_url(server.url, server.password))
    tenant = f"bench{uuid.uuid4().hex[:6]}"
    p = period(tenant)
    costs = [
        (Bucket(f"t:{tenant}", "requests", 10**9), 1),
        (Bucket(f"t:{tenant}", "tokens", 10**12), 10),
        (Bucket("d:ns/model", "requests", 10**9), 1),
        (Bucket("d:ns/model", "tokens", 10**12), 10),
    ]
    tokens = [c for c in costs if c[0].kind == "tokens"]
    reserves, settles, pings = [], [], []
    try:
        for n in range(requests + requests // 10):
            rid = uuid.uuid4().hex
            started = time.perf_counter()
            await limits.reserve(store, p, rid, 10, 10**12, 0, costs)
            reserved = time.perf_counter()
            await limits.settle(store, p, rid, "c:bench", n, [(b, 2) for b, _ in tokens])
            settled = time.perf_counter()
            await store.client.ping()
            pinged = time.perf_counter()
            if n >= requests // 10:
                reserves.append(reserved - started)
                settles.append(settled - reserved)
                pings.append(pinged - settled)
    finally:
        await store.close()
    return reserves, settles, pings


async def script_server_time(server: RedisServer) -> float:
    """Microseconds the server spent per script call (INFO commandstats: EVALSHA), whatever
    the machine's load: the store's own share of the added latency."""
    store = Store(parse_store_url(server.url, server.password))
    try:
        stats = await store.client.info("commandstats")
    finally:
        await store.close()
    return float(stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0.0))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes")
    parser.add_argument("--requests", type=int, default=2000, help="sequential, per variant")
    args = parser.parse_args(argv)
    requests = 100 if args.smoke else args.requests
    attempts = 4 if args.smoke else 12
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        work = Path(tmp)
        server = RedisServer(work / "redis").start()
        try:
            print(
                f"[bench] 2 gateways: a burst of 24 clients x {attempts}; then {requests} "
                "sequential requests through one",
                flush=True,
            )
            ours, theirs, with_store, without, gateway_cpu = measure(
                work, server, attempts, requests
            )
            for name, figures in (("shared store", ours), ("per replica", theirs)):
                print(
                    f"  {name:12}: usage limit {USAGE_LIMIT}: admitted "
                    f"{figures['usage_admitted_tokens']}, overshoot {figures['usage_overshoot']}; "
                    f"{TOKENS_PER_MINUTE}/min: admitted {figures['rate_admitted_tokens']} of "
                    f"{figures['rate_allowed_tokens']} allowed, overshoot {figures['rate_overshoot']}"
                )
            reserves, settles, pings = asyncio.run(script_round_trips(server, requests))
            server_us = asyncio.run(script_server_time(server))
        finally:
            server.stop()
    added = statistics.median(with_store) * 1000 - statistics.median(without) * 1000
    trip = [r + s for r, s in zip(reserves, settles, strict=True)]
    print(
        f"  through the gateway: p50 {pct(with_store, 0.5):.2f} ms with the store, "
        f"{pct(without, 0.5):.2f} ms without (added {added:.2f} ms); p99 "
        f"{pct(with_store, 0.99):.2f} / {pct(without, 0.99):.2f} ms"
    )
    print(
        f"  the scripts alone: reserve p50 {pct(reserves, 0.5):.3f} ms, settle p50 "
        f"{pct(settles, 0.5):.3f} ms, both p50 {pct(trip, 0.5):.3f} ms, p99 {pct(trip, 0.99):.3f} "
        f"ms; a PING p50 {pct(pings, 0.5):.3f} ms"
    )
    print(
        f"  CPU per request, whatever the load: the gateway {gateway_cpu * 1000:.3f} ms more "
        f"with the store; the store {server_us:.1f} us per script call (2 per request)"
    )
    summary = {
        "store": ours,
        "per_replica": theirs,
        "gateway_p50_ms": {"store": round(pct(with_store, 0.5), 3), "none": round(pct(without, 0.5), 3)},
        "gateway_p99_ms": {"store": round(pct(with_store, 0.99), 3), "none": round(pct(without, 0.99), 3)},
        "added_p50_ms": round(added, 3),
        "scripts_p50_ms": {"reserve": round(pct(reserves, 0.5), 3), "settle": round(pct(settles, 0.5), 3),
                           "both": round(pct(trip, 0.5), 3)},
        "scripts_p99_ms": round(pct(trip, 0.99), 3),
        "ping_p50_ms": round(pct(pings, 0.5), 3),
        "gateway_extra_cpu_ms": round(gateway_cpu * 1000, 3),
        "store_us_per_script": round(server_us, 1),
        "load_average": round(os.getloadavg()[0], 1),
    }  # fmt: skip
    print_summary(__file__, args.smoke, **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast a key change reaches the front door and a gateway: write -> effect, p50 / p99.

    python benchmarks/bench_keys.py [--trials 100] [--smoke]

On the local cluster (started if none runs, stopped again if this started it) it runs the
operator, the local data plane and the front door, makes an enterprise tenant with one Ready
deployment, then repeats each change ``--trials`` times while one client per place sends
requests back to back (the front door's ``/v1/subscription``, the gateway's
``/v1/completions``):

- revoke: ``keys revoke`` returned -> the first request answered 401;
- suspend / resume: the Tenant patch returned -> the first 403 / the first 200 again;
- tier: the Tenant's tier patched -> the first gateway answer under the new tier's limit;
- first request: the latency of a new key's first call, which must succeed (read through when
  the cache lacks the key; otherwise a cache hit).

The effect time is the start of the first request that shows it, minus the moment the write
returned (0 when a request begun before already showed it): so it is an upper bound, within one
request's round trip (a few ms here). Prints a table and one JSON line. ``--smoke``: one trial
of each (seconds once the cluster runs; a test runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paitient_secure_model as sdk  # noqa: E402

from benchmarks.summary import print_summary  # noqa: E402
from paitient_cli import admin  # noqa: E402
from paitient_common.kubeapi import Kube  # noqa: E402
from paitient_common.resources.install import install_crds  # noqa: E402
from paitient_localcluster.cluster import LocalCluster  # noqa: E402
from tests.integration.frontdoor_process import ApiProcess  # noqa: E402
from tests.integration.gateway_tls import Gateway, gateway  # noqa: E402
from tests.integration.operator_process import OperatorProcess  # noqa: E402
from tests.integration.stack_helpers import make_tenant  # noqa: E402

SYSTEM = "paitient-system"
TENANT = ("paitient.ai/v1alpha1", "Tenant")
Check = Callable[[int, dict[str, str]], bool]


class Place:
    """One place a key is checked: a URL and the request to send there (over TLS to a gateway:
    trusting the operator's CA, verifying the name its route gives, as the front door does)."""

    def __init__(
        self, name: str, method: str, url: str, body: Any = None, tls: Gateway | None = None
    ) -> None:
        self.name, self.method, self.url, self.body = name, method, url, body
        self.tls = tls

    def request(self, session: aiohttp.ClientSession, headers: dict[str, str]) -> Any:
        if self.tls is None:
            return session.request(self.method, self.url, json=self.body, headers=headers)
        return session.request(
            self.method, self.url, json=self.body, headers=headers,
            ssl=self.tls.context, server_hostname=self.tls.server_name,
        )  # fmt: skip


async def effect(
    session: aiohttp.ClientSession,
    place: Place,
    headers: dict[str, str],
    shows: Check,
    after: float,
    timeout: float = 30.0,
) -> float:
    """Seconds from ``after`` to the start of the first request whose answer ``shows`` the
    change (0 when one begun before ``after`` already did)."""
    deadline = after + timeout
    while time.monotonic() < deadline:
        started = time.monotonic()
        async with place.request(session, headers) as r:
            await r.read()
            if shows(r.status, dict(r.headers)):
                return max(0.0, started - after)
    raise TimeoutError(f"no effect at {place.name} within {timeout} s")


async def measure(
    places: list[Place],
    headers: Callable[[], dict[str, str]],
    write: Callable[[], object],
    shows: Check,
    ready: Check,
) -> dict[str, float]:
    """One trial: wait until every place answers ``ready``, write, time the effect at each."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        h = headers()
        for place in places:
            await effect(session, place, h, ready, time.monotonic())
        await asyncio.to_thread(write)
        returned = time.monotonic()
        delays = await asyncio.gather(*(effect(session, p, h, shows, returned) for p in places))
    return {p.name: d for p, d in zip(places, delays, strict=True)}


async def first_calls(
    places: list[Place], headers: Callable[[], dict[str, str]]
) -> dict[str, float]:
    """The latency of a key's first request at each place, one after the other (the front
    door's read-through, if any, warms nothing for the gateway: each has its own cache)."""
    latencies = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for place in places:
            started = time.monotonic()
            async with place.request(session, headers()) as r:
                await r.read()
                if r.status != 200:
                    raise AssertionError(f"a new key's first request at {place.name}: {r.status}")
            latencies[place.name] = time.monotonic() - started
    return latencies


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


def run(
    trials: int, kube: Kube, base_url: str, gateway: Gateway, tenant: dict[str, str]
) -> dict[str, Any]:
    client_id = tenant["client_id"]
    front = Place("front door", "GET", f"{base_url}/subscription")
    gw = Place(
        "gateway",
        "POST",
        f"{gateway.url}/v1/completions",
        {"model": "x", "prompt": "p", "max_tokens": 1},
        tls=gateway,
    )
    places = [front, gw]
    results: dict[str, list[float]] = {}

    def record(change: str, delays: dict[str, float]) -> None:
        for place, delay in delays.items():
            results.setdefault(f"{change} @ {place}", []).append(delay)

    def auth(key: str) -> Callable[[], dict[str, str]]:
        return lambda: {"Authorization": f"Bearer {key}", "X-Client-ID": client_id}

    ok: Check = lambda status, _: status == 200  # noqa: E731
    for i in range(trials):
        key = admin.create_key(kube, client_id, None, f"bench {i}", SYSTEM)[0]
        record("new key, first request's latency", asyncio.run(first_calls(places, auth(key))))
        revoke = lambda k=key: admin.revoke_key(kube, k.split("_")[1], SYSTEM)  # noqa: E731
        record("revoke", asyncio.run(measure(places, auth(key), revoke, lambda s, _: s == 401, ok)))
    main_key = auth(tenant["key"])
    for _ in range(trials):
        suspend = lambda: admin.set_suspended(kube, tenant["name"], True)  # noqa: E731
        resume = lambda: admin.set_suspended(kube, tenant["name"], False)  # noqa: E731
        record(
            "suspend", asyncio.run(measure(places, main_key, suspend, lambda s, _: s == 403, ok))
        )
        record("resume", asyncio.run(measure(places, main_key, resume, ok, lambda s, _: s == 403)))
    for i in range(trials):
        tier, limit = ("standard", "600") if i % 2 == 0 else ("enterprise", "6000")
        write = lambda t=tier: kube.patch(*TENANT, tenant["name"], {"spec": {"tier": t}})  # noqa: E731
        under = lambda _s, h, lim=limit: h.get("x-ratelimit-limit-requests") == lim  # noqa: E731
        record("tier change", asyncio.run(measure([gw], main_key, write, under, lambda *_: True)))
    return results


def report(results: dict[str, list[float]], smoke: bool) -> None:
    print(f"{'change @ place':<48} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    summary = {}
    for name, values in results.items():
        p50, p99, worst = percentiles(values)
        print(
            f"{name:<48} {len(values):>4} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f} {worst * 1000:>8.1f}"
        )
        summary[name] = {
            "n": len(values),
            "p50_ms": round(p50 * 1000, 1),
            "p99_ms": round(p99 * 1000, 1),
        }
    print_summary(__file__, smoke, **summary)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="one trial of each, seconds")
    args = parser.parse_args()
    trials = 1 if args.smoke else args.trials
    cluster = LocalCluster(log=lambda _m: None)
    started_here = not cluster.is_healthy()
    kubeconfig = cluster.up()
    kube = Kube.from_kubeconfig(str(kubeconfig))
    install_crds(kube)
    with tempfile.TemporaryDirectory(prefix="paitient-bench-keys-") as tmp:
        work = Path(tmp)
        routes = work / "routes.json"
        operator = OperatorProcess(
            cluster.layout.kubeconfig("operator"), work / "operator.log",
            env={"PAITIENT_DEFAULT_STORAGE_CLASS": "encrypted-local"},
        )  # fmt: skip
        plane = api = None
        tenant: dict[str, str] | None = None
        try:
            operator.start()
            with (work / "dataplane.log").open("wb") as log:
                plane = subprocess.Popen(
                    [sys.executable, "-m", "paitient_localcluster.simulated.dataplane", "--kubeconfig", str(kubeconfig),
                     "--routes", str(routes), "--state-dir", str(work / "dataplane"),
                     "--netns", str(cluster.namespaces.netns_path)],
                    cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
                )  # fmt: skip
            api = ApiProcess(kubeconfig, work / "api.log", gateway_url=f"file:{routes}")
            api.start()
            tenant = make_tenant(kube, tier="enterprise")
            with sdk.SecureModelClient(
                api_key=tenant["key"], client_id=tenant["client_id"], base_url=api.base_url
            ) as client:
                client.deploy_model(
                    model_name="ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name="bench"
                )
                client.wait_until_ready("bench", timeout=180, poll_interval=0.5)
            gw = gateway(routes, f"{tenant['namespace']}/bench", kube)
            report(run(trials, kube, api.base_url, gw, tenant), args.smoke)
        finally:
            if tenant is not None:
                admin.delete_tenant(kube, tenant["name"], force=True)
            if api is not None:
                api.stop()
            if plane is not None:
                plane.terminate()
                plane.wait(timeout=30)
            operator.stop()
            if started_here:
                cluster.down(quiet=True)


if __name__ == "__main__":
    main()

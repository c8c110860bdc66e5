"""Limits that hold exactly across replicas, on the local cluster with a real redis-server: an
operator given the store (it renders it into every gateway, the password through a Secret of
the ModelDeployment's), two front-door processes, and a ModelDeployment of two replicas, whose
two pods the local data plane serves with a gateway each. A concurrent burst through both front
doors meets a tier's usage limit, then its tokens per minute: overshoot 0, every refusal the
limit's own. Then the store is stopped under load: the gateways fall back to their shares (no
over-admission), and once it is back, empty, the tenant's usage (the subscription, at once on
both front doors; Tenant.status, rolled up from the UsageReports) is what the clients received.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.tiers import DEFAULT_TIERS
from paitient_localcluster.host.processes import probe_context
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.gateway_tls import route_entry
from tests.integration.operator_process import OperatorProcess
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for
from tests.store.limit_load import LimitLoad
from tests.storeserver import RedisServer

TIERS = {
    **{name: tier.model_dump(by_alias=True) for name, tier in DEFAULT_TIERS.items()},
    # A period's usage limit of 200 tokens; the rates out of the way.
    "burst-usage": {"tokenLimit": 200, "requestsPerMinute": 100_000, "tokensPerMinute": 100_000,
                    "maxDeployments": 2, "maxGpus": 4, "gpusAllowed": True},
    # 600 tokens a minute (10 a second); the usage limit out of the way.
    "burst-rate": {"tokenLimit": 10**9, "requestsPerMinute": 100_000, "tokensPerMinute": 600,
                   "maxDeployments": 2, "maxGpus": 4, "gpusAllowed": True},
}  # fmt: skip
USAGE_REFUSAL = "usage limit for the period reached"
RATE_REFUSAL = "rate limit exceeded (tokens per minute)"
MODEL = "limits"


@dataclass
class Stack:
    kube: Kube
    store: RedisServer
    fronts: list[ApiProcess]
    routes: Path


@pytest.fixture
def stack(
    kubeconfig: Path, kube: Kube, dataplane: Path, tmp_path: Path, redis_server: RedisServer
) -> Iterator[Stack]:
    env = {
        **redis_server.env(),
        "PAITIENT_DEFAULT_STORAGE_CLASS": "encrypted-local",
        "PAITIENT_TIERS": json.dumps(TIERS),
    }
    with OperatorProcess.others_paused():  # one operator at a time: this one knows the store
        operator = OperatorProcess.for_cluster(kubeconfig, tmp_path / "operator.log", env=env)
        fronts = [
            ApiProcess(kubeconfig, tmp_path / f"api-{n}.log", gateway_url=f"file:{dataplane}",
                       env=redis_server.env())
            for n in range(2)
        ]  # fmt: skip
        try:
            operator.start()
            for front in fronts:
                front.start()
            yield Stack(kube, redis_server, fronts, dataplane)
        finally:
            for front in fronts:
                front.stop()
            operator.stop()


def _serve(stack: Stack, tier: str) -> dict[str, str]:
    """A tenant on ``tier`` with a Ready ModelDeployment of two replicas, each with its gateway."""
    tenant = make_tenant(stack.kube, tier=tier)
    stack.kube.create(
        {
            "apiVersion": "paitient.ai/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": MODEL, "namespace": tenant["namespace"]},
            "spec": {"model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"}, "useGpu": True,
                     "gpu": {"count": 1}, "replicas": 2,
                     # Each replica in turn: the burst meets both gateways (prefix routing would
                     # keep this one tenant's one prompt on one of them).
                     "routing": {"strategy": "round-robin"},
                     "storage": {"size": "5Gi", "storageClassName": "encrypted-local"}},
        }
    )  # fmt: skip
    key = f"{tenant['namespace']}/{MODEL}"
    wait_for(
        lambda: (
            len(route_entry(stack.routes, key, 120).get("replicas") or []) == 2
            and _status(stack.kube, tenant["namespace"]).get("readyReplicas") == 2
        ),
        timeout=180,
        what="both replicas ready, each with its gateway",
    )
    return tenant


def _status(kube: Kube, namespace: str) -> dict[str, Any]:
    md = kube.get("paitient.ai/v1alpha1", "ModelDeployment", MODEL, namespace=namespace) or {}
    return md.get("status") or {}


def _load(stack: Stack, tenant: dict[str, str], clients: int, pause: float = 0.0) -> LimitLoad:
    headers = {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}

    def body(client: int, attempt: int) -> dict[str, Any]:
        out: dict[str, Any] = {"model": MODEL, "prompt": "a", "max_tokens": 9}
        if (client + attempt) % 2:
            out |= {"stream": True, "stream_options": {"include_usage": True}}
        return out

    urls = [f"{front.root}/v1/completions" for front in stack.fronts]
    return LimitLoad(urls, headers, clients=clients, body=body, pause_after_refusal=pause)


def _subscriptions(stack: Stack, tenant: dict[str, str]) -> list[int]:
    headers = {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}
    usage = []
    for front in stack.fronts:
        status, _, body = call("GET", f"{front.base_url}/subscription", headers=headers)
        assert status == 200, body
        usage.append(int(body["current_usage"]))
    return usage


def _served_by_each_gateway(stack: Stack, tenant: dict[str, str]) -> list[float]:
    entry = route_entry(stack.routes, f"{tenant['namespace']}/{MODEL}", 5)
    counts = []
    for replica in entry["replicas"]:
        with urllib.request.urlopen(
            f"{replica['url']}/metrics", timeout=5, context=probe_context()
        ) as response:
            page = response.read().decode()
        counts.append(
            sum(float(line.split()[-1]) for line in page.splitlines()
                if line.startswith("paitient_gateway_requests_total{") and "completions" in line)
        )  # fmt: skip
    return counts


def _tenant_usage(kube: Kube, name: str) -> int:
    tenant = kube.get("paitient.ai/v1alpha1", "Tenant", name) or {}
    return int((tenant.get("status") or {}).get("currentUsage") or 0)


def test_a_burst_through_two_front_doors_and_two_gateways_never_passes_a_tier_limit(
    stack: Stack,
) -> None:
    usage_tenant = _serve(stack, "burst-usage")
    rate_tenant = _serve(stack, "burst-rate")
    try:
        # The period's usage limit: 200 tokens; each request reserves 11 and uses 10.
        load = _load(stack, usage_tenant, clients=24)
        asyncio.run(load.run_for(attempts=8))
        assert not load.errors and set(load.statuses) == {200, 429}, load.statuses
        assert load.tokens <= 200, f"overshoot {load.tokens - 200}"
        assert load.tokens >= 200 - 2 * 11  # the limit, not an outage, stopped the burst
        assert set(load.refusals) == {USAGE_REFUSAL}
        assert load.admitted + load.statuses[429] == 24 * 8
        assert _subscriptions(stack, usage_tenant) == [load.tokens] * 2  # at once, on both
        assert all(n > 0 for n in _served_by_each_gateway(stack, usage_tenant))

        # Tokens per minute: one bucket of 600 and its refill, for all replicas together.
        load = _load(stack, rate_tenant, clients=24)
        started = time.monotonic()
        asyncio.run(load.run_for(attempts=8))
        elapsed = time.monotonic() - started
        assert not load.errors and set(load.statuses) == {200, 429}, load.statuses
        assert load.tokens <= 600 + 10 * elapsed + 11, (load.tokens, elapsed)
        assert load.tokens >= 600 - 11
        assert set(load.refusals) == {RATE_REFUSAL}
        assert all(n > 0 for n in _served_by_each_gateway(stack, rate_tenant))
    finally:
        admin.delete_tenant(stack.kube, usage_tenant["name"], force=True)
        admin.delete_tenant(stack.kube, rate_tenant["name"], force=True)


def test_the_store_stopped_under_load_holds_the_limit_and_usage_reconciles(stack: Stack) -> None:
    tenant = _serve(stack, "burst-rate")
    try:
        load = _load(stack, tenant, clients=12, pause=0.05)

        async def scenario() -> None:
            running = asyncio.ensure_future(load.run_for())
            await asyncio.sleep(3)
            stack.store.stop()  # SIGTERM; it keeps nothing (no persistence): back empty
            await asyncio.sleep(5)
            await asyncio.to_thread(stack.store.start)
            await asyncio.sleep(5)
            load.stop()
            await running

        started = time.monotonic()
        asyncio.run(scenario())
        elapsed = time.monotonic() - started
        assert not load.errors and not [s for s in load.statuses if s >= 500], load.statuses
        assert load.tokens <= 600 + 10 * elapsed + 2 * 11, (load.tokens, elapsed)
        assert all(m.startswith(RATE_REFUSAL[:-1]) for m in load.refusals), load.refusals
        # Reconciled: the store was rebuilt from the gateways' ledgers; the subscription shows
        # what the clients received, on both front doors, and so does Tenant.status once the
        # operator has rolled up the UsageReports.
        wait_for(
            lambda: _subscriptions(stack, tenant) == [load.tokens] * 2,
            timeout=15,
            what=f"the subscription to show the {load.tokens} tokens received",
        )
        wait_for(
            lambda: _tenant_usage(stack.kube, tenant["name"]) == load.tokens,
            timeout=60,
            what="Tenant.status to show the tokens received",
        )
    finally:
        admin.delete_tenant(stack.kube, tenant["name"], force=True)

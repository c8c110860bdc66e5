"""Tenants at scale: many created at once until all are Ready, a key in each, and the last
tenant's key on its first request at the front door and at a gateway, with the caches' memory.

Each tenant is a namespace, a default-deny NetworkPolicy, a ResourceQuota and a key Secret
(the operator's children). The front door starts before the burst, so its resident memory
before and after tells what its caches hold for every tenant's key. One GPU deployment of the
last tenant is served by the local data plane (a real gateway with the vLLM stand-in), whose
gateway's caches hold every tenant's key records too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane import audit
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.gateway_tls import Gateway, gateway
from tests.integration.metrics_text import metric_sum, scrape
from tests.integration.stack_helpers import start_data_plane

from .figures import Burst, CpuMeter, Requests, rss_mib
from .ours import (
    CREATE_WORKERS,
    OPERATOR_USER,
    SETTLE_S,
    Operators,
    cluster_pids,
    create_all,
    md_manifest,
    md_states,
    quiet_writes,
)
from .progress import BenchStopped, Waiter, tenant_state

TENANT = ("paitient.ai/v1alpha1", "Tenant")
SYSTEM = "paitient-system"
TIER = "standard"


def tenant_manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": TENANT[0],
        "kind": TENANT[1],
        "metadata": {"name": f"t{i:04d}"},
        "spec": {"clientId": f"client-{i:04d}", "tier": TIER},
    }


@dataclass
class TenantFigures:
    burst: Burst
    keys_s: float  # writing one key into each tenant's Secret
    first_request_ms: dict[str, float]
    front_door_mib: tuple[float, float]  # before the tenants, after every key is cached
    gateway_mib: float
    cached: dict[str, float]  # the front door's caches: objects held
    quiet_writes: int = 0
    quiet_s: float = 0.0
    quiet_cpu_s: float = 0.0  # the operator's CPU meanwhile (its looks at every Tenant)

    def lines(self) -> list[str]:
        before, after = self.front_door_mib
        return [
            *self.burst.lines(f"{self.burst.count} Tenants"),
            f"  a key in each tenant: {self.keys_s:.1f} s",
            "  the last tenant's new key, first request: "
            + ", ".join(
                f"{where} {ms:.1f} ms (200)" for where, ms in self.first_request_ms.items()
            ),
            f"  front door resident memory: {before:.0f} MiB before the tenants, {after:.0f} MiB "
            f"with every tenant's key cached (+{after - before:.0f} MiB)",
            f"  gateway resident memory, its caches holding every tenant's keys: "
            f"{self.gateway_mib:.0f} MiB",
            "  front door cache objects: "
            + ", ".join(f"{k} {v:.0f}" for k, v in self.cached.items()),
        ]

    def summary(self) -> dict[str, object]:
        return {
            **self.burst.summary(),
            "keys_s": round(self.keys_s, 1),
            "first_request_ms": {k: round(v, 1) for k, v in self.first_request_ms.items()},
            "front_door_mib": [round(m) for m in self.front_door_mib],
            "gateway_mib": round(self.gateway_mib),
            "quiet_writes": self.quiet_writes,
            "quiet_cpu_s": round(self.quiet_cpu_s, 1),
        }


def _tenants_ready(kube: Kube) -> list[Any]:
    return [tenant_state(t) for t in kube.list(*TENANT)]


def _add_keys(kube: Kube, tenants: list[dict[str, Any]]) -> list[str]:
    """One key in each tenant's Secret, concurrently; the plaintext keys, in order."""
    with ThreadPoolExecutor(max_workers=CREATE_WORKERS) as pool:
        return list(
            pool.map(lambda t: admin.create_key_for(kube, t, None, "bench", SYSTEM)[0], tenants)
        )


def _first_requests(
    front_door: str, gateway: Gateway, key: str, client_id: str
) -> dict[str, float]:
    """Milliseconds of a new key's first request at each place (it must succeed)."""
    headers = {"Authorization": f"Bearer {key}", "X-Client-ID": client_id}
    calls: dict[str, Callable[[], tuple[int, dict[str, str], Any]]] = {
        "front door": lambda: call("GET", f"{front_door}/subscription", headers=headers),
        "gateway": lambda: gateway.call(
            "POST", "/v1/completions", {"model": "x", "prompt": "p", "max_tokens": 1}, headers
        ),
    }
    latencies = {}
    for where, request in calls.items():
        started = time.monotonic()
        status, _, body = request()
        if status != 200:
            raise BenchStopped(f"the last tenant's new key at the {where}: {status} {body}")
        latencies[where] = (time.monotonic() - started) * 1000
    return latencies


def _gateway_pid(plane_pid: int) -> int | None:
    """The gateway the data plane runs (its child running paitient_gateway)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == plane_pid and b"paitient_gateway" in cmdline:
            return int(proc.name)
    return None


def run(
    cluster: LocalCluster, kube: Kube, work: Path, replicas: int, count: int, stall: float,
    quiet: float, out: Callable[[str], None],
) -> TenantFigures:  # fmt: skip
    operators = Operators(cluster, work, replicas)
    api = ApiProcess(
        cluster.kubeconfig, work / "api.log", gateway_url=f"file:{work / 'routes.json'}"
    )
    plane = None
    try:
        operators.start()
        api.start()
        time.sleep(2)
        front_before = rss_mib(api.proc.pid) if api.proc else 0.0
        offset = audit.log_size(cluster.layout.audit_log)
        before = operators.metric("paitient_operator_reconciles_total", kind="Tenant")
        cpu = CpuMeter({**operators.pids(), **cluster_pids(cluster)}).start()
        started = time.monotonic()
        applied = create_all(kube, [tenant_manifest(i) for i in range(count)])
        out(f"[tenants] {count} Tenants created in {applied:.1f} s")
        wall = Waiter("tenants", count, lambda: _tenants_ready(kube), stall=stall, out=out).wait(
            started
        )
        time.sleep(SETTLE_S)
        events = audit.read_events(cluster.layout.audit_log, offset)
        burst = Burst(
            count, applied, wall, Requests.of(events, [OPERATOR_USER]),
            reconciles=operators.metric("paitient_operator_reconciles_total", kind="Tenant") - before,
            rss_mib=operators.rss(), cpu_s=cpu.read(),
        )  # fmt: skip
        # Before anything else happens (a gateway's usage report would rightly change a status).
        idle = CpuMeter(operators.pids()).start()
        quiet_count = len(quiet_writes(cluster, quiet))
        quiet_cpu = sum(idle.read().values())
        out(f"[tenants] operator writes during a {quiet:.0f} s quiet period: {quiet_count}")
        tenants = sorted(kube.list(*TENANT), key=lambda t: t["metadata"]["name"])
        last = tenants[-1]
        namespace = last["status"]["namespace"]
        kube.create(md_manifest(0, namespace))
        plane, routes = start_data_plane(cluster.kubeconfig, work)
        Waiter("the last tenant's deployment", 1, lambda: md_states(kube, namespace),
               stall=stall, out=out).wait(time.monotonic())  # fmt: skip
        keys_started = time.monotonic()
        _add_keys(kube, tenants[:-1])
        keys_s = time.monotonic() - keys_started
        key = admin.create_key_for(kube, last, None, "bench: the last tenant's", SYSTEM)[0]
        served = gateway(routes, f"{namespace}/md-0000", kube)
        first = _first_requests(api.base_url, served, key, last["spec"]["clientId"])
        time.sleep(2)
        metrics = scrape(f"{api.root}/metrics")
        cached = {
            cache: metric_sum(metrics, "paitient_cache_objects", cache=cache)
            for cache in ("keys", "tenants")
        }
        gateway_pid = _gateway_pid(plane.pid)
        figures = TenantFigures(
            burst, keys_s, first,
            (front_before, rss_mib(api.proc.pid) if api.proc else 0.0),
            rss_mib(gateway_pid) if gateway_pid else 0.0, cached,
        )  # fmt: skip
        figures.quiet_s, figures.quiet_writes, figures.quiet_cpu_s = quiet, quiet_count, quiet_cpu
        return figures
    finally:
        if plane is not None:
            plane.terminate()
            plane.wait(timeout=30)
        api.stop()
        operators.stop()

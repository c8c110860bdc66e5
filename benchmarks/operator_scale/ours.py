"""Our operator under a burst of GPU ModelDeployments: to all Ready, a quiet period, a restart
with all of them Ready, and a second burst to twice as many (memory at 1,000).

GPU deployments on the simulated H100 nodes: what this measures is the operator, and KWOK makes
their pods Ready at once (no data plane runs 500 gateways here). CPU ones would ask the real
node for vLLM's memory (more than 5Gi each), which no machine here has 500 times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paitient_common.kubeapi import Kube
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane import audit
from paitient_localcluster.simulated.nodes import GPU_PRODUCT
from tests.integration.metrics_text import metric_sum, scrape
from tests.integration.operator_process import OperatorProcess
from tests.unit.operator.factories import make_md

from .figures import Burst, CpuMeter, Requests, rss_mib
from .progress import BenchStopped, State, Waiter, model_deployment_state

OPERATOR_USER = "paitient-operator"
NAMESPACE = "bench"
MD = ("paitient.ai/v1alpha1", "ModelDeployment")
CREATE_WORKERS = 16
# The cluster's processes whose CPU a burst shares with the controller under test.
CLUSTER_PROCESSES = ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok")
SETTLE_S = 3.0
FIRST_RECONCILE_TIMEOUT = (
    600.0  # after the last Ready: requests still in flight reach the audit log
)


def md_manifest(i: int, namespace: str = NAMESPACE) -> dict[str, Any]:
    """The i-th benchmark deployment: one simulated H100, a 1Gi cache on the encrypted class."""
    manifest: dict[str, Any] = (
        make_md(f"md-{i:04d}")
        .namespace(namespace)
        .gpus(1)
        .product(GPU_PRODUCT)
        .resources(cpu="100m", memory="1Gi")
        .storage("1Gi", "encrypted-local")
        .manifest()
    )
    return manifest


def create_all(
    kube: Kube,
    manifests: Sequence[dict[str, Any]],
    create: Callable[[dict[str, Any]], object] | None = None,
) -> float:
    """Create every object at once (``CREATE_WORKERS`` clients); the seconds it took."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CREATE_WORKERS) as pool:
        list(pool.map(create or kube.create, manifests))
    return time.monotonic() - started


def md_states(kube: Kube, namespace: str = NAMESPACE) -> list[State]:
    return [model_deployment_state(m) for m in kube.list(*MD, namespace=namespace)]


@dataclass
class Operators:
    """``replicas`` operator processes on the cluster, each with its metrics port."""

    cluster: LocalCluster
    work: Path
    replicas: int = 1
    procs: list[tuple[OperatorProcess, str]] = field(default_factory=list)
    generation: int = 0

    def start(self) -> None:
        self.generation += 1
        for n in range(self.replicas):
            proc = OperatorProcess(
                self.cluster.layout.kubeconfig("operator"),
                self.work / f"operator-{self.generation}-{n}.log",
            )
            proc.start()
            self.procs.append((proc, f"http://{proc.metrics_address}/metrics"))

    def stop(self) -> None:
        for proc, _ in self.procs:
            proc.stop()
        self.procs.clear()

    def metric(self, name: str, **labels: str) -> float:
        """Summed over the replicas (only the leader reconciles)."""
        total = 0.0
        for _, url in self.procs:
            try:
                total += metric_sum(scrape(url), name, **labels)
            except OSError:
                continue
        return total

    def reconciles(self) -> float:
        return self.metric("paitient_operator_reconciles_total", kind="ModelDeployment")

    def pids(self) -> dict[str, int]:
        return {
            f"operator {n}": proc.proc.pid
            for n, (proc, _) in enumerate(self.procs)
            if proc.proc is not None
        }

    def rss(self) -> dict[str, float]:
        return {
            f"operator {n}": rss_mib(proc.proc.pid)
            for n, (proc, _) in enumerate(self.procs)
            if proc.proc is not None
        }


def cluster_pids(cluster: LocalCluster) -> dict[str, int]:
    pids = {name: cluster.process(name).read_pid() for name in CLUSTER_PROCESSES}
    return {name: pid for name, pid in pids.items() if pid is not None}


def burst(
    cluster: LocalCluster,
    kube: Kube,
    operators: Operators,
    first: int,
    count: int,
    stall: float,
    out: Callable[[str], None],
) -> Burst:
    """Create ModelDeployments ``first`` … ``first + count - 1`` at once; wait until every one in
    the namespace is Ready; the figures of that stretch of the audit log."""
    offset = audit.log_size(cluster.layout.audit_log)
    before = operators.reconciles()
    cpu = CpuMeter({**operators.pids(), **cluster_pids(cluster)}).start()
    started = time.monotonic()
    applied = create_all(kube, [md_manifest(i) for i in range(first, first + count)])
    out(f"[operator] {count} ModelDeployments created in {applied:.1f} s")
    wall = Waiter("operator", first + count, lambda: md_states(kube), stall=stall, out=out).wait(
        started
    )
    time.sleep(SETTLE_S)
    events = list(audit.read_events(cluster.layout.audit_log, offset))
    return Burst(
        count, applied, wall, Requests.of(events, [OPERATOR_USER]),
        reconciles=operators.reconciles() - before, rss_mib=operators.rss(), cpu_s=cpu.read(),
    )  # fmt: skip


def quiet_writes(cluster: LocalCluster, seconds: float) -> list[audit.AuditEvent]:
    """The operator's writes during ``seconds`` with nothing changing (goal: none)."""
    offset = audit.log_size(cluster.layout.audit_log)
    time.sleep(seconds)
    return audit.writes_by(audit.read_events(cluster.layout.audit_log, offset), OPERATOR_USER)


@dataclass(frozen=True)
class Restart:
    """An operator restarted with ``count`` deployments Ready."""

    count: int
    verified_s: float  # from the new process's start until it reconciled every deployment
    requests: Requests

    def lines(self) -> list[str]:
        writes = self.requests.writes
        lines = [
            f"restart with {self.count} Ready: all re-verified {self.verified_s:.1f} s after the "
            f"new operator started; {self.requests.total} API requests, {len(writes)} writes"
        ]
        lines += [f"    write: {n:5d}  {w}" for w, n in self.requests.writes_by_resource().items()]
        return lines

    def summary(self) -> dict[str, object]:
        return {
            "count": self.count,
            "verified_s": round(self.verified_s, 1),
            "requests": self.requests.total,
            "writes": len(self.requests.writes),
        }


def restart(
    cluster: LocalCluster, operators: Operators, count: int, stall: float,
    out: Callable[[str], None],
) -> Restart:  # fmt: skip
    """Stop the operators, start them again, and time the new ones' reconciles of every
    deployment (the resume pass), with the writes it made."""
    operators.stop()
    offset = audit.log_size(cluster.layout.audit_log)
    started = time.monotonic()
    operators.start()
    best, moved = 0.0, time.monotonic()
    while (done := operators.reconciles()) < count:
        now = time.monotonic()
        if done > best:
            best, moved = done, now
        # Until the first reconcile the operator may be reading everything (the first lists):
        # that is part of the figure, so it gets FIRST_RECONCILE_TIMEOUT, not the stall bound.
        waited, bound = now - moved, stall if best else FIRST_RECONCILE_TIMEOUT
        if waited > bound:
            raise BenchStopped(
                f"restart: the new operator reconciled {done:.0f} of {count} and then nothing "
                f"for {bound:.0f} s (log: {operators.procs[0][0].log})"
            )
        time.sleep(0.1)
    verified = time.monotonic() - started
    out(f"[operator] restarted: {count} re-verified after {verified:.1f} s")
    time.sleep(SETTLE_S)
    events = audit.read_events(cluster.layout.audit_log, offset)
    return Restart(count, verified, Requests.of(events, [OPERATOR_USER]))

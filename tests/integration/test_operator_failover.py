"""Two operators on one Lease, on the local cluster: only the leader reconciles; when it is
killed (SIGKILL, as a lost node) or stopped (SIGTERM, as a rolling upgrade), the standby takes
the Lease and a ModelDeployment created afterwards becomes Ready; the new leader's first pass
over what the old one left writes nothing (the API server's audit log). How long the handover
takes is measured by benchmarks/bench_failover.py (its smoke mode runs here)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from paitient_common.kubeapi import Kube
from paitient_localcluster.controlplane import audit
from paitient_operator.election import LOST_LEASE_EXIT_CODE
from tests.integration.failover import (
    Candidates,
    candidates,
    identity_of,
    lease_holder,
    reconciled_since,
    writes_since,
)
from tests.integration.operator_process import OperatorProcess
from tests.integration.relay import relay_to_api_server, relayed_kubeconfig
from tests.integration.waiting import wait_for
from tests.prerequisites import local_audit_log
from tests.unit.operator.factories import make_md

REPO = Path(__file__).resolve().parents[2]
MD = ("paitient.ai/v1alpha1", "ModelDeployment")
OPERATOR_USER = "paitient-operator"  # the local operator kubeconfig's identity


@pytest.fixture
def tenant_ns(kube: Kube, namespace: str) -> str:
    kube.patch("v1", "Namespace", namespace,
               {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})  # fmt: skip
    return namespace


@pytest.fixture
def pair(kube: Kube, kubeconfig: Path, dataplane: Path, tmp_path: Path) -> Iterator[Candidates]:
    with candidates(kube, kubeconfig, tmp_path) as two:
        yield two


def _phase(kube: Kube, ns: str, name: str) -> str | None:
    return ((kube.get(*MD, name, namespace=ns) or {}).get("status") or {}).get("phase")


def _ready(kube: Kube, ns: str, name: str, timeout: float = 120) -> None:
    kube.create(make_md(name).namespace(ns).gpus(1).storage("5Gi", "encrypted-local").manifest())
    wait_for(lambda: _phase(kube, ns, name) == "Ready", timeout=timeout, what=f"{name} Ready")


def _settled(kube: Kube, ns: str, name: str) -> None:
    """The rollout's last write is the Ready Event, posted after the status."""
    wait_for(
        lambda: any(e["reason"] == "Ready" and e["involvedObject"]["name"] == name
                    for e in kube.list("v1", "Event", namespace=ns)),
        what=f"{name}'s Ready event",
    )  # fmt: skip


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_the_standby_takes_over_and_its_first_pass_writes_nothing(
    how: Literal["kill", "stop"], pair: Candidates, kube: Kube, tenant_ns: str, kubeconfig: Path
) -> None:
    log = local_audit_log(kubeconfig)
    leader = pair.wait_leader()
    standby = pair.standby()
    _ready(kube, tenant_ns, "before")
    _settled(kube, tenant_ns, "before")
    # Only the leader's controller reconciled (each replica's own metrics); the standby said who
    # leads.
    assert leader.reconciles() > 0 and standby.reconciles() == 0
    assert f"standing by: {identity_of(leader)} holds Lease" in standby.log.read_text()
    offset = audit.log_size(log)
    handover = pair.hand_over(how)
    assert handover.leader is standby and lease_holder(kube) == identity_of(standby)
    print(f"{how}: the standby held the Lease {handover.seconds:.1f} s after the leader went")
    _ready(kube, tenant_ns, "after")
    # The new leader's start-up pass over "before" (it reads the certificate by name) wrote
    # nothing.
    wait_for(reconciled_since(log, offset, OPERATOR_USER, tenant_ns, "before"),
             what="the new leader's pass over 'before'")  # fmt: skip
    assert writes_since(log, offset, OPERATOR_USER, tenant_ns, "before") == []
    assert writes_since(log, offset, OPERATOR_USER, tenant_ns, "after")  # it does write new ones
    # The restarted old leader stands by; the Lease stays where it is.
    assert lease_holder(kube) == identity_of(standby)


def test_a_leader_that_cannot_renew_stops_before_a_standby_may_take_over(
    kube: Kube, kubeconfig: Path, dataplane: Path, tmp_path: Path
) -> None:
    """Its API link cut (a partitioned node), the leader exits once its renew deadline passed;
    the standby takes the Lease only after the lease duration (on its own clock)."""
    with relay_to_api_server(kubeconfig) as relay, OperatorProcess.others_paused():
        cut_off = OperatorProcess(
            relayed_kubeconfig(kubeconfig.parent / "operator.kubeconfig", relay,
                               tmp_path / "relayed.kubeconfig"),
            tmp_path / "cut-off.log", env={"PAITIENT_DEFAULT_STORAGE_CLASS": "encrypted-local"},
        )  # fmt: skip
        other = OperatorProcess.for_cluster(kubeconfig, tmp_path / "other.log")
        try:
            cut_off.start()
            wait_for(lambda: lease_holder(kube) == identity_of(cut_off), what="the first leading")
            other.start()
            relay.cut()
            assert cut_off.proc is not None
            wait_for(lambda: cut_off.proc is not None and cut_off.proc.poll() is not None,
                     timeout=30, interval=0.05, what="the cut-off leader exiting")  # fmt: skip
            # Never two leaders: it stopped before the standby could take the Lease.
            assert lease_holder(kube) == identity_of(cut_off)
            assert cut_off.proc.returncode == LOST_LEASE_EXIT_CODE
            assert "lost Lease" in cut_off.log.read_text()
            wait_for(lambda: lease_holder(kube) == identity_of(other), timeout=30,
                     what="the other operator leading")  # fmt: skip
        finally:
            for operator in (cut_off, other):
                operator.stop()


def test_the_failover_benchmark_runs_in_its_smoke_mode(
    kubeconfig: Path, dataplane: Path, tmp_path: Path
) -> None:
    with OperatorProcess.others_paused():
        done = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "bench_failover.py"), "--smoke",
             "--no-dataplane"],
            capture_output=True, text=True, timeout=600, cwd=REPO,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "operator handover after SIGKILL" in done.stdout
    assert "operator handover after SIGTERM" in done.stdout
    summary = json.loads(done.stdout.strip().splitlines()[-1])  # benchmarks/summary.py's line
    assert summary["benchmark"] == "bench_failover" and summary["smoke"] is True, summary

"""Operator replicas on one Lease, for the failover test and benchmark: which process leads,
and how long a standby takes to lead once the leader is killed (SIGKILL: a lost node) or
stopped (SIGTERM: a rolling upgrade, a drained node)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from paitient_common.kubeapi import Kube
from paitient_localcluster.controlplane import audit
from paitient_operator.config import LeaderElectionConfig
from paitient_operator.election import lease as leases
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for

SYSTEM_NAMESPACE = "paitient-system"  # the operator's default, where its Lease lives
LEASE = LeaderElectionConfig().lease_name
_IDENTITY = re.compile(r"this replica \(([^)]+)\)")


def lease_holder(kube: Kube, namespace: str = SYSTEM_NAMESPACE, name: str = LEASE) -> str:
    lease = kube.get(leases.API_VERSION, leases.KIND, name, namespace=namespace)
    return leases.record_of(lease).holder if lease else ""


def identity_of(operator: OperatorProcess) -> str | None:
    """The candidate identity the process logged (standing by or leading)."""
    found = (
        _IDENTITY.findall(operator.log.read_text(errors="replace")) if operator.log.exists() else []
    )
    return found[-1] if found else None


@dataclass
class Candidates:
    """Operator processes competing for the Lease; the test or benchmark owns their lives."""

    kube: Kube
    operators: list[OperatorProcess]

    def leader(self) -> OperatorProcess | None:
        holder = lease_holder(self.kube)
        return next((o for o in self.operators if holder and identity_of(o) == holder), None)

    def wait_leader(self, timeout: float = 60) -> OperatorProcess:
        wait_for(lambda: self.leader() is not None, timeout=timeout, what="an operator leading")
        leader = self.leader()
        assert leader is not None
        return leader

    def standby(self) -> OperatorProcess:
        leader = self.leader()
        (other,) = [
            o for o in self.operators if o is not leader and o.proc and o.proc.poll() is None
        ]
        return other

    def hand_over(
        self,
        how: Literal["kill", "stop"],
        then: Callable[[], object] = lambda: None,
        timeout: float = 60,
    ) -> Handover:
        """Kill or stop the leader, call ``then`` at once (e.g. create a ModelDeployment), and
        wait for the standby to hold the Lease. The old leader is restarted afterwards, as the
        kubelet would, and stands by."""
        old, new = self.wait_leader(), self.standby()
        # A standby answers its probe before its first try at the Lease logs who it is.
        new_identity = wait_for(lambda: identity_of(new), what="the standby's identity")
        ended = time.monotonic()
        old.kill() if how == "kill" else old.stop()
        then()
        wait_for(lambda: lease_holder(self.kube) == new_identity, timeout=timeout,
                 interval=0.05, what="the standby holding the Lease")  # fmt: skip
        handover = Handover(time.monotonic() - ended, ended, new)
        old.start()  # back as a standby: the Lease is held
        return handover


@dataclass(frozen=True)
class Handover:
    """How long the Lease was without a leader, when the old one ended, who leads now."""

    seconds: float
    ended_at: float  # time.monotonic() at the kill or stop
    leader: OperatorProcess


@contextmanager
def candidates(
    kube: Kube, kubeconfig: Path, logs: Path, count: int = 2, env: dict[str, str] | None = None
) -> Iterator[Candidates]:
    """``count`` operators on the local cluster, every other operator of this session paused;
    all stopped afterwards (the session's own then start again)."""
    with OperatorProcess.others_paused():
        started: list[OperatorProcess] = []
        try:
            for i in range(count):
                operator = OperatorProcess.for_cluster(
                    kubeconfig, logs / f"operator-{i}.log",
                    env={"PAITIENT_DEFAULT_STORAGE_CLASS": "encrypted-local", **(env or {})},
                )  # fmt: skip
                operator.start()
                started.append(operator)
            yield Candidates(kube, started)
        finally:
            for operator in started:
                operator.stop()


def _about(event: audit.AuditEvent, user: str, namespace: str, name: str) -> bool:
    # The ModelDeployment and its children are named like it; its certificate "<name>-tls".
    return (
        event.user == user and event.namespace == namespace and event.name in (name, f"{name}-tls")
    )


def reconciled_since(
    log: Path, offset: int, user: str, namespace: str, name: str
) -> Callable[[], bool]:
    """True once ``user`` reconciled that ModelDeployment after ``offset`` of the audit log:
    every reconcile reads its serving certificate's Secret by name."""

    def seen() -> bool:
        return any(
            _about(e, user, namespace, name) and e.verb == "get" and e.resource == "secrets"
            for e in audit.read_events(log, offset)
        )

    return seen


def writes_since(
    log: Path, offset: int, user: str, namespace: str, name: str
) -> list[audit.AuditEvent]:
    """What ``user`` wrote to that ModelDeployment or its children after ``offset``."""
    return [
        e for e in audit.read_events(log, offset) if _about(e, user, namespace, name) and e.is_write
    ]

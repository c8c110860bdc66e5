"""The native autoscaler's pass over what the controller's caches hold: which deployments it
reads, and that it reconciles one by name through the controller (fakes for the caches and the
controller; the pass's own logic is what is tested)."""

from __future__ import annotations

from typing import Any

from paitient_operator.autoscaling.decision import ReplicaLoad
from paitient_operator.autoscaling.worker import AutoscalerWorker
from tests.unit.operator.factories import make_md


class NoBundle:
    """The API as the pass reads it besides the caches: the gateways' CA bundle, absent here."""

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        assert (kind, name) == ("ConfigMap", "paitient-ca-bundle")


def test_the_pass_reads_the_caches_and_reconciles_by_name_through_the_controller() -> None:
    native = make_md("m").cpu_only().autoscaling(4, 0).body()
    fixed = make_md("f").cpu_only().body()
    yielded = make_md("y").cpu_only().autoscaling(4, 0).body()
    yielded["status"] = {"autoscaling": {"engine": "native", "yieldedTo": "HPA/theirs"}}
    going = make_md("g").cpu_only().autoscaling(4, 0).body()
    going["metadata"]["deletionTimestamp"] = "2026-12-07T16:00:00Z"
    starting = {"metadata": {"name": "m-1"},
                "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}  # fmt: skip
    asked: list[tuple[str, str]] = []
    reconciled: list[tuple[str, str, list[str]]] = []

    def pods(namespace: str, name: str) -> list[dict[str, Any]]:
        asked.append((namespace, name))
        return [starting]

    def reconcile(namespace: str, name: str, loads: Any) -> None:
        assert all(isinstance(load, ReplicaLoad) for load in loads)
        reconciled.append((namespace, name, [load.pod for load in loads]))

    worker = AutoscalerWorker(
        NoBundle(),  # type: ignore[arg-type]
        lambda: [native, fixed, yielded, going],
        pods,
        reconcile,
        lambda body: body.get("status") or {},
        "paitient-system",
    )
    assert worker.tick() == 1
    # Only the natively autoscaled one is read (the yielded one's HPA scales it), and the
    # replica still starting counts as one whose load is unknown (never removed for it).
    assert asked == [("tenant-demo", "m")]
    assert reconciled == [("tenant-demo", "m", ["starting-0"])]

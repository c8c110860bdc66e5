"""The benchmark's waiting: each kind's Ready, and a stop naming the object on a failure or a
stall (benchmarks/operator_scale/progress.py), on a clock the test moves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from benchmarks.operator_scale.progress import (
    BenchStopped,
    State,
    Waiter,
    kubeai_model_state,
    model_deployment_state,
    tenant_state,
)


def md(name: str, phase: str | None, reason: str = "", message: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase:
        status = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": str(phase == "Ready"), "reason": reason,
                            "message": message}],
        }  # fmt: skip
    return {"metadata": {"name": name, "namespace": "bench"}, "status": status}


def test_a_refused_model_deployment_is_a_failure_that_names_its_reason() -> None:
    state = model_deployment_state(
        md("md-0001", "Failed", "InvalidSpec", "spec.resources.memory 256Mi is too small")
    )
    assert not state.ready
    assert state.failure is not None
    assert "InvalidSpec" in state.failure and "256Mi" in state.failure


def test_a_pod_no_gpu_node_can_take_is_a_failure_progressing_is_not() -> None:
    assert model_deployment_state(md("a", "Pending", "GPUCapacity", "0/5 nodes")).failure
    # The scheduler's word while the pod's claim is being bound: wait (the stall bounds it).
    unbound = "0/8 nodes are available: pod has unbound immediate PersistentVolumeClaims"
    assert model_deployment_state(md("u", "Pending", "Unschedulable", unbound)).failure is None
    progressing = model_deployment_state(md("b", "Progressing", "Progressing", "0/1 ready"))
    assert progressing.failure is None and not progressing.ready
    assert model_deployment_state(md("c", "Ready", "Ready")).ready
    assert not model_deployment_state(md("d", None)).ready


def test_tenant_and_kubeai_model_readiness() -> None:
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]}}
    assert tenant_state({"metadata": {"name": "t"}, **ready}).ready
    refused = {"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": "tier"}
    assert tenant_state({"metadata": {"name": "t"}, "status": {"conditions": [refused]}}).failure
    model = {"metadata": {"name": "m", "namespace": "kubeai"}, "spec": {"minReplicas": 1}}
    assert not kubeai_model_state(model).ready
    assert kubeai_model_state({**model, "status": {"replicas": {"all": 1, "ready": 1}}}).ready


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def waiter(samples: list[Sequence[State]], clock: Clock, **kw: Any) -> tuple[Waiter, list[str]]:
    lines: list[str] = []

    def sample() -> Sequence[State]:
        return samples.pop(0) if len(samples) > 1 else samples[0]

    return Waiter("t", 2, sample, out=lines.append, clock=clock, sleep=clock.sleep, **kw), lines


def test_wait_returns_the_seconds_until_all_are_ready_and_prints_progress() -> None:
    clock = Clock()
    one = [State("a", True), State("b", False)]
    both = [State("a", True), State("b", True)]
    w, lines = waiter([one, one, both], clock, interval=1.0, every=1.0)
    assert w.wait(0.0) == 2.0
    assert lines[0].endswith("1/2 Ready, 2 exist") and lines[-1].endswith("all 2 Ready")


def test_wait_stops_at_the_first_failure_with_its_name_and_condition() -> None:
    failed = [State("bench/md-0003", False, failure="phase Failed, Ready=False InvalidSpec: x")]
    w, _ = waiter([failed], Clock())
    with pytest.raises(BenchStopped, match=r"bench/md-0003 failed after 0\.0 s: .*InvalidSpec"):
        w.wait(0.0)


def test_wait_stops_when_nothing_changes_for_the_stall_time() -> None:
    stuck = [State("a", True), State("b", False, detail="phase Progressing, 0/1 ready")]
    w, _ = waiter([stuck], Clock(), stall=10.0)
    with pytest.raises(BenchStopped, match=r"nothing changed for 10 s .*b: phase Progressing"):
        w.wait(0.0)


def test_a_state_that_moves_without_turning_ready_is_progress() -> None:
    clock = Clock()
    samples: list[Sequence[State]] = [
        [State("a", False, detail=f"step {n}"), State("b", False)] for n in range(30)
    ]
    samples.append([State("a", True), State("b", True)])
    w, _ = waiter(samples, clock, stall=10.0, interval=1.0)
    assert w.wait(0.0) == 30.0

"""A ModelDeployment's status from what the cluster shows (``paitient_operator.status``, pure):
the phase and Ready reason for each state of the rollout, unschedulable pods, refusals (an object
that does not parse among them), and no change (so no write) when nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from paitient_common.resources.modeldeployment import parse_model_deployment
from paitient_common.resources.shared import InvalidResource
from paitient_operator import conditions as c
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import InvalidSpec, StorageNotEncrypted, TierLimitExceeded, as_refusal
from paitient_operator.status import (
    observed_status,
    refused_status,
    status_changes,
    unschedulable_reason,
)
from tests.unit.operator.factories import make_md

T0, T1 = "2026-11-26T12:00:00Z", "2026-11-26T12:05:00Z"


def deployment(replicas: int, ready: int, updated: int | None = None) -> dict[str, Any]:
    return {
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": ready, "updatedReplicas": updated if updated is not None else ready},
    }  # fmt: skip


def pod(scheduled: str = "True", reason: str = "", message: str = "") -> dict[str, Any]:
    condition = {"type": "PodScheduled", "status": scheduled, "reason": reason, "message": message}
    return {"status": {"conditions": [condition]}}


def ready(status: dict[str, Any]) -> dict[str, Any]:
    found = c.get_condition(status["conditions"], c.TYPE_READY)
    assert found is not None
    return found


GPU_MESSAGE = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."


@pytest.mark.parametrize(
    ("dep", "pods", "phase", "reason", "message"),
    [
        (None, [], "Progressing", "Progressing", "0/1 replicas ready, 0 up to date."),
        (deployment(1, 0), [pod()], "Progressing", "Progressing", "0/1 replicas ready, 0 up to date."),
        (deployment(1, 1), [pod()], "Ready", "Ready", "1/1 replicas ready."),
        (deployment(2, 1, updated=2), [pod(), pod()], "Progressing", "Progressing", "1/2 replicas ready, 2 up to date."),
        (
            deployment(1, 0),
            [pod("False", "Unschedulable", GPU_MESSAGE)],
            "Pending",
            "GPUCapacity",
            f"0/1 replicas ready; cannot be scheduled: {GPU_MESSAGE}",
        ),
        (
            deployment(1, 0),
            [pod("False", "Unschedulable", "0/3 nodes are available: 3 Insufficient memory.")],
            "Pending",
            "Unschedulable",
            "0/1 replicas ready; cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory.",
        ),
    ],
)  # fmt: skip
def test_the_phase_and_ready_reason_follow_the_rollout(
    config: OperatorConfig,
    dep: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    phase: str,
    reason: str,
    message: str,
) -> None:
    md = make_md("m").namespace("tenant-a").obj()
    status = observed_status(md, dep, pods, None, config, T0)
    assert (status["phase"], ready(status)["reason"], status["message"]) == (phase, reason, message)
    assert ready(status)["message"] == message
    assert status["endpoint"] == "https://m.tenant-a.svc:8443"
    assert status["observedGeneration"] == md.metadata.generation
    valid = c.get_condition(status["conditions"], c.TYPE_SPEC_VALID)
    assert valid is not None and valid["status"] == "True"


def test_scaled_to_zero_is_not_ready_and_says_so(config: OperatorConfig) -> None:
    status = observed_status(make_md("m").replicas(0).obj(), deployment(0, 0), [], None, config, T0)
    assert (ready(status)["status"], ready(status)["reason"]) == ("False", "ScaledToZero")
    assert status["message"] == "Scaled to zero replicas."


def test_losing_a_replica_after_being_ready_is_degraded(config: OperatorConfig) -> None:
    md = make_md("m").replicas(2).obj()
    was = observed_status(md, deployment(2, 2), [pod(), pod()], None, config, T0)
    assert was["phase"] == "Ready"
    now = observed_status(md, deployment(2, 1, updated=2), [pod(), pod()], was, config, T1)
    assert (now["phase"], ready(now)["reason"]) == ("Degraded", "Degraded")
    assert ready(now)["lastTransitionTime"] == T1


def test_an_unchanged_world_gives_an_equal_status_so_nothing_is_written(
    config: OperatorConfig,
) -> None:
    md = make_md("m").obj()
    first = observed_status(md, deployment(1, 1), [pod()], None, config, T0)
    again = observed_status(md, deployment(1, 1), [pod()], first, config, T1)
    assert again == first  # lastTransitionTime kept: nothing flipped
    assert status_changes(first, again) is None
    scaled = observed_status(md, deployment(1, 0), [pod()], first, config, T1)
    changes = status_changes(first, scaled)
    assert changes is not None and set(changes) == {
        "phase",
        "conditions",
        "readyReplicas",
        "message",
    }


def test_a_pod_waiting_for_placement_says_which_resource_is_missing() -> None:
    assert unschedulable_reason([pod()]) is None
    assert unschedulable_reason([pod("False", "SchedulerError", "x")]) is None
    assert unschedulable_reason([pod(), pod("False", "Unschedulable", GPU_MESSAGE)]) == (
        "GPUCapacity",
        GPU_MESSAGE,
    )
    affinity = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    assert unschedulable_reason([pod("False", "Unschedulable", affinity)]) == (
        "GPUCapacity",
        affinity,
    )
    # Its model cache claim not bound yet: a few seconds' wait, still Progressing.
    unbound = "0/8 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    assert unschedulable_reason([pod("False", "Unschedulable", unbound)]) is None


@pytest.mark.parametrize(
    ("error", "failed_type"),
    [
        (StorageNotEncrypted("storageClassName 'plain' is not known to be encrypted"), c.TYPE_STORAGE_ENCRYPTED),
        (InvalidSpec("spec.runtime.extraArgs contains --host"), c.TYPE_SPEC_VALID),
        (TierLimitExceeded("tier 'free' does not allow GPUs"), c.TYPE_SPEC_VALID),
    ],
)  # fmt: skip
def test_a_refusal_is_failed_with_its_reason_on_the_step_that_refused(
    error: Exception, failed_type: str
) -> None:
    status = refused_status(error, 3, None, T0)  # type: ignore[arg-type]
    assert (status["phase"], status["observedGeneration"], status["message"]) == (
        "Failed",
        3,
        str(error),
    )
    assert (status["readyReplicas"], status["replicas"]) == (0, 0)
    refused = c.get_condition(status["conditions"], failed_type)
    assert refused is not None and refused["status"] == "False"
    assert refused["reason"] == error.reason  # type: ignore[attr-defined]
    assert ready(status)["reason"] == error.reason  # type: ignore[attr-defined]


def test_an_object_that_does_not_parse_is_refused_as_an_invalid_spec() -> None:
    broken = make_md("a").manifest()
    broken["spec"]["replicas"] = -3
    with pytest.raises(InvalidResource) as parsed:
        parse_model_deployment(broken)
    refusal = as_refusal(parsed.value)
    assert isinstance(refusal, InvalidSpec) and "spec.replicas" in refusal.message
    status = refused_status(refusal, 2, None, T0)
    spec_valid = c.get_condition(status["conditions"], c.TYPE_SPEC_VALID)
    assert spec_valid is not None and spec_valid["reason"] == "InvalidSpec"
    assert status["message"] == str(parsed.value)
    tier = TierLimitExceeded("tier 'free' does not allow GPUs")
    assert as_refusal(tier) is tier  # the operator's own refusals keep their reason


def test_a_refusal_fixed_by_the_user_turns_the_condition_back(config: OperatorConfig) -> None:
    md = make_md("m").obj()
    refused = refused_status(StorageNotEncrypted("plain"), 1, None, T0)
    fixed = observed_status(md, deployment(1, 1), [pod()], refused, config, T1)
    storage = c.get_condition(fixed["conditions"], c.TYPE_STORAGE_ENCRYPTED)
    assert storage is not None and (storage["status"], storage["lastTransitionTime"]) == (
        "True",
        T1,
    )
    assert fixed["phase"] == "Ready"


def test_status_changes_keep_to_the_fields_that_differ() -> None:
    assert status_changes(None, {"phase": "Ready"}) == {"phase": "Ready"}
    assert status_changes({"phase": "Ready", "kopf": {"x": 1}}, {"phase": "Ready"}) is None
    assert status_changes(
        {"phase": "Pending", "message": "m"}, {"phase": "Ready", "message": "m"}
    ) == {"phase": "Ready"}

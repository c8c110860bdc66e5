"""What the operator's caches keep of each object (cache/projections.py, pure)."""

from __future__ import annotations

from paitient_operator.autoscaling.loads import serving_pods
from paitient_operator.cache.projections import keep_metadata, keep_object, keep_pod, with_kind


def test_only_the_operators_own_managed_fields_are_kept() -> None:
    obj = {"metadata": {"name": "a", "managedFields": [
        {"manager": "paitient-operator", "fieldsV1": {"f:spec": {}}},
        {"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}},
    ]}, "spec": {"x": 1}}  # fmt: skip
    kept = keep_object(obj)
    assert [f["manager"] for f in kept["metadata"]["managedFields"]] == ["paitient-operator"]
    assert kept["spec"] == {"x": 1}
    assert obj["metadata"]["managedFields"][1]["manager"] == "kube-controller-manager"  # untouched


def test_a_pod_keeps_its_name_labels_phase_and_whether_it_was_placed() -> None:
    pod = {"metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}, "annotations": {"x": "y"}},
           "spec": {"containers": [{"name": "c"}]},
           "status": {"phase": "Pending", "conditions": [
               {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"},
               {"type": "Initialized", "status": "True"},
               {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]}}  # fmt: skip
    assert keep_pod(pod) == {
        "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"},
            {"type": "Ready", "status": "False"}]},
    }  # fmt: skip


def test_a_pod_keeps_whether_it_serves_for_the_autoscaler() -> None:
    serving = {"metadata": {"name": "p1", "namespace": "n"},
               "status": {"phase": "Running", "podIP": "10.1.2.3", "hostIP": "10.0.0.1",
                          "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None},
                                         {"type": "PodScheduled", "status": "True"}]}}  # fmt: skip
    crashing = {"metadata": {"name": "p2", "namespace": "n"},
                "status": {"phase": "Running", "podIP": "10.1.2.4",
                           "conditions": [{"type": "Ready", "status": "False"},
                                          {"type": "PodScheduled", "status": "True"}],
                           "containerStatuses": [
                               {"name": "vllm", "state": {"waiting": {
                                   "reason": "CrashLoopBackOff", "message": "back-off 5m"}}},
                               {"name": "gateway", "state": {"running": {"startedAt": "t"}}}]}}  # fmt: skip
    starting = {"metadata": {"name": "p3", "namespace": "n"},
                "status": {"phase": "Pending",
                           "conditions": [{"type": "PodScheduled", "status": "True"}]}}  # fmt: skip
    assert keep_pod(crashing)["status"] == {
        "phase": "Running", "podIP": "10.1.2.4",
        "conditions": [{"type": "Ready", "status": "False"},
                       {"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
    }  # fmt: skip
    pods = [serving, crashing, starting]
    ready, waiting = serving_pods([keep_pod(p) for p in pods])
    assert ([p["metadata"]["name"] for p in ready], waiting) == (["p1"], 1)
    assert (ready, waiting) == ([keep_pod(serving)], 1)
    assert [p["metadata"]["name"] for p in serving_pods(pods)[0]] == ["p1"]  # as from the API
    assert keep_pod(serving)["status"]["podIP"] == "10.1.2.3"


def test_a_key_secret_keeps_what_an_apply_is_judged_by_not_its_records() -> None:
    ours = {"manager": "paitient-operator", "operation": "Apply", "fieldsV1": {"f:type": {}}}
    theirs = {"manager": "paitient-cli", "operation": "Update", "fieldsV1": {"f:data": {}}}
    listed = {  # a list item: no apiVersion, kind
        "type": "Opaque",
        "metadata": {"name": "paitient-api-keys-acme", "namespace": "paitient-system",
                     "annotations": {"paitient.ai/spec-hash": "abc"},
                     "managedFields": [ours, theirs]},
        "data": {"key-1": "c2VjcmV0"},
    }  # fmt: skip
    kept = keep_metadata(with_kind(listed, "v1", "Secret"))
    assert "data" not in kept
    assert kept["apiVersion"] == "v1" and kept["kind"] == "Secret" and kept["type"] == "Opaque"
    assert kept["metadata"]["annotations"] == {"paitient.ai/spec-hash": "abc"}
    assert kept["metadata"]["managedFields"] == [ours]

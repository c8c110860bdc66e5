"""What the operator's caches keep of each object (cache/projections.py, pure)."""

from __future__ import annotations

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
               {"type": "Ready", "status": "False"}]}}  # fmt: skip
    assert keep_pod(pod) == {
        "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]},
    }  # fmt: skip


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

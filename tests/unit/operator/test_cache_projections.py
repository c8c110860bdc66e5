"""What the operator's caches keep of each object (cache/projections.py, pure)."""

from __future__ import annotations

from paitient_common.resources.tenant import parse_tenant
from paitient_operator.builders.tenant import build_keys_secret
from paitient_operator.cache.projections import keep_metadata, keep_object, keep_pod, with_kind
from paitient_operator.children import is_subset


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


def test_a_key_secret_without_its_records_still_matches_what_the_operator_renders() -> None:
    tenant = parse_tenant({"apiVersion": "paitient.ai/v1alpha1", "kind": "Tenant",
                           "metadata": {"name": "acme"},
                           "spec": {"clientId": "acme-clinic", "tier": "standard"}})  # fmt: skip
    desired = build_keys_secret(tenant, "paitient-system")
    listed = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    live = {**listed, "data": {"key-1": "c2VjcmV0"}}  # a list item: no apiVersion, kind
    kept = keep_metadata(with_kind(live, "v1", "Secret"))
    assert "data" not in kept
    assert is_subset(desired, kept)  # nothing to write on a resync

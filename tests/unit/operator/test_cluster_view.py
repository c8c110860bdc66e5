"""The reads a reconcile makes besides its children, from kopf's indices (pure)."""

from __future__ import annotations

from paitient_operator.cluster_view import IndexView, hpa_target, scaler_entry, slice_endpoints


def test_an_autoscaler_counts_only_when_it_scales_a_deployment() -> None:
    assert hpa_target({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "m"}}}) == "m"
    assert (
        hpa_target({"spec": {"scaleTargetRef": {"kind": "ModelDeployment", "name": "m"}}}) is None
    )
    assert hpa_target({}) is None


def test_hpas_and_scaled_objects_are_kept_by_what_they_scale_with_their_owner() -> None:
    ours = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"namespace": "ns", "name": "m", "ownerReferences": [
            {"kind": "ModelDeployment", "name": "m", "uid": "u1", "controller": True}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m"}},
    }  # fmt: skip
    assert scaler_entry(ours) == (
        ("ns", "m"),
        {"kind": "HorizontalPodAutoscaler", "name": "m", "owner": "u1", "targetKind": "Deployment"},
    )
    theirs = {
        "kind": "ScaledObject",
        "metadata": {"namespace": "ns", "name": "mine"},
        "spec": {"scaleTargetRef": {"name": "m"}},  # KEDA's default kind: a Deployment
    }
    assert scaler_entry(theirs) == (
        ("ns", "m"),
        {"kind": "ScaledObject", "name": "mine", "owner": None, "targetKind": "Deployment"},
    )
    on_md = {"kind": "HorizontalPodAutoscaler", "metadata": {"namespace": "ns", "name": "h"},
             "spec": {"scaleTargetRef": {"kind": "ModelDeployment", "name": "m"}}}  # fmt: skip
    assert scaler_entry(on_md)[1]["targetKind"] == "ModelDeployment"  # type: ignore[index]
    job = {"metadata": {"namespace": "ns", "name": "j"},
           "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "m"}}}  # fmt: skip
    assert scaler_entry(job) is None


def test_the_index_view_answers_from_the_indices() -> None:
    view = IndexView(
        storage_class_index={None: [{"metadata": {"name": "encrypted-local"}}]},
        tenant_index={"tenant-acme": [{"metadata": {"name": "acme"}}]},
        autoscaler_index={("tenant-acme", "m"): [True]},
    )
    assert [sc["metadata"]["name"] for sc in view.storage_classes()] == ["encrypted-local"]
    assert view.tenant_of("tenant-acme") == {"metadata": {"name": "acme"}}
    assert view.tenant_of("elsewhere") is None
    assert view.autoscaled("tenant-acme", "m") and not view.autoscaled("tenant-acme", "other")
    entry = {"kind": "ScaledObject", "name": "s", "owner": None, "targetKind": "Deployment"}
    keda = IndexView({}, {}, {}, scaled_object_index={("ns", "m"): [entry]})
    assert keda.autoscalers("ns", "m") == [entry] and keda.autoscalers("ns", "x") == []


def test_api_server_addresses_come_from_the_kubernetes_endpoint_slice() -> None:
    endpoint_slice = {
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.0.0.12"], "conditions": {"ready": True}},
            {"addresses": ["10.0.0.11"]},
            {"addresses": ["10.0.0.13"], "conditions": {"ready": False}},  # going away
        ],
    }
    assert slice_endpoints(endpoint_slice) == [("10.0.0.11", 6443), ("10.0.0.12", 6443)]
    assert slice_endpoints({"metadata": {"name": "kubernetes"}}) == []  # loopback: none
    view = IndexView({}, {}, {}, {None: [("10.0.0.11", 6443), ("10.0.0.11", 6443)]})
    assert view.api_server_endpoints() == [("10.0.0.11", 6443)]
    assert IndexView({}, {}, {}).api_server_endpoints() == []


def test_gateway_bindings_come_from_their_index_when_the_view_has_one() -> None:
    binding = {"kind": "ClusterRoleBinding", "metadata": {"name": "paitient-gateway.ns.m"}}
    view = IndexView(
        {},
        {},
        {},
        {},
        {"RoleBinding": {}, "ClusterRoleBinding": {"paitient-gateway.ns.m": [binding]}},
    )
    assert view.gateway_binding("ClusterRoleBinding", "paitient-gateway.ns.m") == binding
    assert view.gateway_binding("RoleBinding", "paitient-gateway.ns.m") is None  # absent
    assert (
        IndexView({}, {}, {}).gateway_binding("RoleBinding", "x") is False
    )  # no copy: ask the API

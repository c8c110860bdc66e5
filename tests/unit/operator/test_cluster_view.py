"""The reads a reconcile makes, from the operator's caches (no cluster: the caches are fed by
hand, as the operator's own writes feed them), and the pure helpers behind them."""

from __future__ import annotations

from typing import Any

from paitient_operator.cache import watched as w
from paitient_operator.cache.store import ClusterCache
from paitient_operator.cache.view import CacheView
from paitient_operator.cluster_view import hpa_target, slice_endpoints

MANAGED = {"app.kubernetes.io/managed-by": "paitient-operator"}


def cache_of(*objs: dict[str, Any]) -> CacheView:
    cache = ClusterCache([w.MODEL_DEPLOYMENTS, *w.CHILDREN, w.PODS, *w.AROUND])
    for obj in objs:
        cache.written(obj)
    return CacheView(cache)


def obj(api_version: str, kind: str, name: str, namespace: str | None = None, version: str = "1",
        labels: dict[str, str] | None = None, **rest: Any) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": name, "resourceVersion": version}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **rest}


def test_an_autoscaler_counts_only_when_it_scales_a_deployment() -> None:
    assert hpa_target({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "m"}}}) == "m"
    assert (
        hpa_target({"spec": {"scaleTargetRef": {"kind": "ModelDeployment", "name": "m"}}}) is None
    )
    assert hpa_target({}) is None


def test_the_cache_view_answers_from_the_caches() -> None:
    view = cache_of(
        obj("storage.k8s.io/v1", "StorageClass", "encrypted-local"),
        obj("paitient.ai/v1alpha1", "Tenant", "acme", status={"namespace": "tenant-acme"}),
        obj("autoscaling/v2", "HorizontalPodAutoscaler", "h", "tenant-acme",
            spec={"scaleTargetRef": {"kind": "Deployment", "name": "m"}}),
    )  # fmt: skip
    assert [sc["metadata"]["name"] for sc in view.storage_classes()] == ["encrypted-local"]
    tenant = view.tenant_of("tenant-acme")
    assert tenant is not None and tenant["metadata"]["name"] == "acme"
    assert view.tenant_of("elsewhere") is None
    assert view.autoscaled("tenant-acme", "m") and not view.autoscaled("tenant-acme", "other")


def test_children_pods_and_the_deployments_of_a_namespace_come_from_the_caches() -> None:
    service = obj("v1", "Service", "m", "ns", labels=MANAGED)
    pod = obj("v1", "Pod", "m-1", "ns", labels={"paitient.ai/modeldeployment": "m"},
              status={"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]})  # fmt: skip
    md = obj("paitient.ai/v1alpha1", "ModelDeployment", "m", "ns")
    view = cache_of(service, pod, md)
    assert view.live(obj("v1", "Service", "m", "ns", labels=MANAGED)) == service
    assert view.live(obj("v1", "Service", "x", "ns", labels=MANAGED)) is None  # absent
    assert view.live(obj("v1", "ConfigMap", "m", "ns")) is False  # not cached: ask the API
    assert [p["metadata"]["name"] for p in view.pods("ns", "m")] == ["m-1"]
    assert view.pods("ns", "m")[0]["status"]["conditions"][0]["type"] == "PodScheduled"
    assert view.pods("ns", "other") == []
    assert [m["metadata"]["name"] for m in view.model_deployments("ns")] == ["m"]
    assert view.model_deployment("ns", "m") == md


def test_a_write_through_never_rolls_the_cache_back() -> None:
    newer = obj("v1", "Service", "m", "ns", "9", labels=MANAGED)
    view = cache_of(newer, obj("v1", "Service", "m", "ns", "5", labels=MANAGED))
    live = view.live(newer)
    assert live and live["metadata"]["resourceVersion"] == "9"


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
    labelled = {"kubernetes.io/service-name": "kubernetes"}
    view = cache_of(
        obj("discovery.k8s.io/v1", "EndpointSlice", "kubernetes", "default", labels=labelled,
            **endpoint_slice)
    )  # fmt: skip
    assert view.api_server_endpoints() == [("10.0.0.11", 6443), ("10.0.0.12", 6443)]
    assert cache_of().api_server_endpoints() == []

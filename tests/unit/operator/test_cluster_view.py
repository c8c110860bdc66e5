"""The reads a reconcile makes, from the operator's caches (no cluster: the caches are fed by
hand, as the operator's own writes feed them), answering as the API view does over the same
objects, and the pure helpers behind them."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from paitient_common.kubeapi import Obj
from paitient_operator.cache import watched as w
from paitient_operator.cache.store import ClusterCache
from paitient_operator.cache.view import CacheView
from paitient_operator.cluster_view import ApiView, scaler_entry, slice_endpoints

MANAGED = {"app.kubernetes.io/managed-by": "paitient-operator"}


def cache_of(*objs: dict[str, Any], keda: bool = False, api: ApiView | None = None) -> CacheView:
    scaled = [w.SCALED_OBJECTS] if keda else []
    cache = ClusterCache([w.MODEL_DEPLOYMENTS, *w.CHILDREN, w.PODS, *w.AROUND, *scaled])
    for obj in objs:
        cache.written(obj)
    return CacheView(cache, api)


def obj(api_version: str, kind: str, name: str, namespace: str | None = None, version: str = "1",
        labels: dict[str, str] | None = None, **rest: Any) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": name, "resourceVersion": version}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **rest}


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


# -- the running operator's view against the API's, over the same objects ---------------------

TENANTS = [
    obj("paitient.ai/v1alpha1", "Tenant", "acme", status={"namespace": "tenant-acme"}),
    obj("paitient.ai/v1alpha1", "Tenant", "beta", status={"namespace": "tenant-beta"}),
    obj("paitient.ai/v1alpha1", "Tenant", "new", status={}),  # not set up yet: owns no namespace
]
STORAGE_CLASSES = [
    obj("storage.k8s.io/v1", "StorageClass", "encrypted-local"),
    obj("storage.k8s.io/v1", "StorageClass", "plain"),
]
HPAS = [
    obj("autoscaling/v2", "HorizontalPodAutoscaler", "h1", "tenant-acme",
        spec={"scaleTargetRef": {"kind": "Deployment", "name": "m"}}),
    obj("autoscaling/v2", "HorizontalPodAutoscaler", "h2", "tenant-acme",
        spec={"scaleTargetRef": {"kind": "ModelDeployment", "name": "other"}}),
    obj("autoscaling/v2", "HorizontalPodAutoscaler", "h3", "tenant-beta",
        spec={"scaleTargetRef": {"kind": "Deployment", "name": "n"}}),
]  # fmt: skip
SLICES = [
    obj("discovery.k8s.io/v1", "EndpointSlice", "kubernetes", "default",
        labels={"kubernetes.io/service-name": "kubernetes"}, ports=[{"port": 6443}],
        endpoints=[{"addresses": ["10.0.0.2"]}, {"addresses": ["10.0.0.1"]}]),
]  # fmt: skip
OBJECTS = {
    "Tenant": TENANTS,
    "StorageClass": STORAGE_CLASSES,
    "HorizontalPodAutoscaler": HPAS,
    "EndpointSlice": SLICES,
}


@dataclass
class ListingKube:
    """The API as ``ApiView`` reads it: lists by kind, namespace and label (a unit-test fake)."""

    objects: dict[str, list[Obj]]
    keda: bool = False  # whether KEDA's API group is served

    def request(self, method: str, path: str) -> Obj:
        assert (method, path) == ("GET", "/apis")
        versions = [{"version": "v1alpha1"}]
        return {"groups": [{"name": "keda.sh", "versions": versions}] if self.keda else []}

    def list(
        self, api_version: str, kind: str, namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:  # fmt: skip
        found = []
        for item in self.objects.get(kind, []):
            meta = item["metadata"]
            if namespace is not None and meta.get("namespace") != namespace:
                continue
            if label_selector is not None:
                key, _, value = label_selector.partition("=")
                if (meta.get("labels") or {}).get(key) != value:
                    continue
            found.append(copy.deepcopy(item))
        return found


def names(objs: list[Obj]) -> list[str]:
    return [str(o["metadata"]["name"]) for o in objs]


def names_of(entries: list[Obj]) -> list[str]:
    return [str(e["name"]) for e in entries]


def test_the_cache_view_answers_as_the_api_does() -> None:
    view = cache_of(*(copy.deepcopy(o) for objs in OBJECTS.values() for o in objs))
    api = ApiView(ListingKube(OBJECTS))  # type: ignore[arg-type]
    for namespace in ("tenant-acme", "tenant-beta", "tenant-none", ""):
        mine, theirs = view.tenant_of(namespace), api.tenant_of(namespace)
        assert (mine and mine["metadata"]["name"]) == (theirs and theirs["metadata"]["name"])
    beta = view.tenant_of("tenant-beta")
    assert beta is not None and beta["metadata"]["name"] == "beta"
    assert view.tenant_of("") is None  # the tenant without a namespace is nobody's
    assert view.tenant_of("elsewhere") is None
    assert sorted(names(view.storage_classes())) == sorted(names(api.storage_classes()))
    assert sorted(names(view.storage_classes())) == ["encrypted-local", "plain"]
    for namespace, deployment in (
        ("tenant-acme", "m"), ("tenant-acme", "other"), ("tenant-beta", "n"), ("tenant-beta", "m"),
    ):  # fmt: skip
        assert view.autoscalers(namespace, deployment) == api.autoscalers(namespace, deployment)
    assert names_of(view.autoscalers("tenant-acme", "m")) == ["h1"]
    assert names_of(view.autoscalers("tenant-acme", "other")) == ["h2"]  # on the ModelDeployment
    assert view.autoscalers("tenant-beta", "m") == []
    assert view.api_server_endpoints() == api.api_server_endpoints()
    assert view.api_server_endpoints() == [("10.0.0.1", 6443), ("10.0.0.2", 6443)]


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


SCALED = obj("keda.sh/v1alpha1", "ScaledObject", "s", "ns", spec={"scaleTargetRef": {"name": "m"}})
SCALED_ENTRY = {"kind": "ScaledObject", "name": "s", "owner": None, "targetKind": "Deployment"}


def test_the_cache_view_keeps_scaled_objects_beside_hpas() -> None:
    keda = cache_of(copy.deepcopy(SCALED), keda=True)
    assert keda.autoscalers("ns", "m") == [SCALED_ENTRY] and keda.autoscalers("ns", "x") == []


def test_scaled_objects_are_asked_of_the_api_when_keda_came_after_the_caches_started() -> None:
    listing = ListingKube({"ScaledObject": [SCALED]}, keda=True)
    view = cache_of(api=ApiView(listing))  # type: ignore[arg-type]
    assert view.autoscalers("ns", "m") == [SCALED_ENTRY]
    none = cache_of(api=ApiView(ListingKube({"ScaledObject": [SCALED]})))  # type: ignore[arg-type]
    assert none.autoscalers("ns", "m") == []  # KEDA's API not served: nothing asked


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

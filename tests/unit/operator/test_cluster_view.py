"""The reads a reconcile makes besides its children: the view the running operator builds from
kopf's indices (its own index handlers) answers as the API view does over the same objects."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paitient_common.kubeapi import Obj
from paitient_operator import handlers
from paitient_operator.cluster_view import (
    ApiView,
    IndexView,
    hpa_target,
    scaler_entry,
    slice_endpoints,
)


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


# -- the running operator's view against the API's, over the same objects ---------------------

TENANTS = [
    {"metadata": {"name": "acme"}, "status": {"namespace": "tenant-acme"}},
    {"metadata": {"name": "beta"}, "status": {"namespace": "tenant-beta"}},
    {"metadata": {"name": "new"}, "status": {}},  # not set up yet: owns no namespace
]
STORAGE_CLASSES = [{"metadata": {"name": "encrypted-local"}}, {"metadata": {"name": "plain"}}]
HPAS = [
    {"metadata": {"name": "h1", "namespace": "tenant-acme"},
     "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "m"}}},
    {"metadata": {"name": "h2", "namespace": "tenant-acme"},
     "spec": {"scaleTargetRef": {"kind": "ModelDeployment", "name": "other"}}},
    {"metadata": {"name": "h3", "namespace": "tenant-beta"},
     "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "n"}}},
]  # fmt: skip
SLICES = [
    {"metadata": {"name": "kubernetes", "namespace": "default",
                  "labels": {"kubernetes.io/service-name": "kubernetes"}},
     "ports": [{"port": 6443}],
     "endpoints": [{"addresses": ["10.0.0.2"]}, {"addresses": ["10.0.0.1"]}]},
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

    def list(
        self, api_version: str, kind: str, namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:  # fmt: skip
        found = []
        for obj in self.objects.get(kind, []):
            meta = obj["metadata"]
            if namespace is not None and meta.get("namespace") != namespace:
                continue
            if label_selector is not None:
                key, _, value = label_selector.partition("=")
                if (meta.get("labels") or {}).get(key) != value:
                    continue
            found.append(copy.deepcopy(obj))
        return found


def index_of(handler: Callable[..., dict[Any, Any] | None], objects: list[Obj]) -> dict[Any, Any]:
    """What kopf keeps for an index handler: every key it returned, with the value of each
    object that returned it."""
    index: dict[Any, list[Any]] = {}
    for obj in objects:
        for key, value in (handler(body=copy.deepcopy(obj)) or {}).items():
            index.setdefault(key, []).append(value)
    return index


def test_the_index_view_the_handlers_build_answers_as_the_api_does() -> None:
    view = handlers._view(
        {
            "storage_class_index": index_of(handlers.storage_class_index, STORAGE_CLASSES),
            "tenant_index": index_of(handlers.tenant_index, TENANTS),
            "autoscaler_index": index_of(handlers.autoscaler_index, HPAS),
            "api_server_index": index_of(handlers.api_server_index, SLICES),
            "gateway_role_binding_index": {},
            "gateway_cluster_role_binding_index": {},
            "scaled_object_index": {},
        }
    )
    api = ApiView(ListingKube(OBJECTS))  # type: ignore[arg-type]
    for namespace in ("tenant-acme", "tenant-beta", "tenant-none", ""):
        assert view.tenant_of(namespace) == api.tenant_of(namespace), namespace
    assert view.tenant_of("tenant-beta") == TENANTS[1]
    assert view.tenant_of("") is None  # the tenant without a namespace is nobody's
    assert sorted(names(view.storage_classes())) == sorted(names(api.storage_classes()))
    assert sorted(names(view.storage_classes())) == ["encrypted-local", "plain"]
    for namespace, deployment in (
        ("tenant-acme", "m"), ("tenant-acme", "other"), ("tenant-beta", "n"), ("tenant-beta", "m"),
    ):  # fmt: skip
        assert view.autoscaled(namespace, deployment) == api.autoscaled(namespace, deployment)
    assert view.autoscaled("tenant-acme", "m") and not view.autoscaled("tenant-acme", "other")
    assert view.api_server_endpoints() == api.api_server_endpoints()
    assert view.api_server_endpoints() == [("10.0.0.1", 6443), ("10.0.0.2", 6443)]


def names(objs: list[Obj]) -> list[str]:
    return [str(o["metadata"]["name"]) for o in objs]


def test_the_index_view_keeps_scaled_objects_beside_hpas() -> None:
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

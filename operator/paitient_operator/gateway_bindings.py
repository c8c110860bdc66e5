"""Deleting the gateway bindings that live outside a ModelDeployment's namespace.

Kubernetes garbage collection cannot remove them (a namespaced owner cannot own objects in
another namespace or cluster-scoped ones), so the operator does: when it sees a ModelDeployment
deleted, and at start for any deleted while it was not running. A binding is deleted only when
its uid label names the deleted ModelDeployment, so a new one of the same name keeps its own.
"""

from __future__ import annotations

import logging

from paitient_common.kubeapi import Kube, Obj
from paitient_common.resources.modeldeployment import API_VERSION, KIND
from paitient_operator.builders.gateway_rbac import (
    GATEWAY_BINDING_LABEL,
    MD_UID_LABEL,
    RBAC_API,
    cross_namespace_binding_name,
    gateway_bindings_to_delete,
)

log = logging.getLogger(__name__)
KINDS = ("RoleBinding", "ClusterRoleBinding")


def delete_gateway_bindings(
    kube: Kube, system_namespace: str, namespace: str, name: str, uid: str
) -> int:
    """Delete the deleted ModelDeployment's bindings; return how many went."""
    binding_name = cross_namespace_binding_name(namespace, name)
    deleted = 0
    for kind in KINDS:
        where = system_namespace if kind == "RoleBinding" else None
        live = kube.get(RBAC_API, kind, binding_name, namespace=where)
        if live is not None and (live["metadata"].get("labels") or {}).get(MD_UID_LABEL) == uid:
            deleted += _delete(kube, kind, live)
    return deleted


def sweep_gateway_bindings(kube: Kube, system_namespace: str) -> int:
    """Delete the bindings of every ModelDeployment that no longer exists."""
    alive = {m["metadata"]["uid"] for m in kube.list(API_VERSION, KIND)}
    selector = f"{GATEWAY_BINDING_LABEL}=true"
    deleted = 0
    for kind in KINDS:
        where = system_namespace if kind == "RoleBinding" else None
        bindings = kube.list(RBAC_API, kind, namespace=where, label_selector=selector)
        for binding in gateway_bindings_to_delete(bindings, alive):
            deleted += _delete(kube, kind, dict(binding))
    return deleted


def _delete(kube: Kube, kind: str, binding: Obj) -> int:
    meta = binding["metadata"]
    if not kube.delete(RBAC_API, kind, meta["name"], namespace=meta.get("namespace")):
        return 0
    log.info("deleted %s %s: its ModelDeployment is gone", kind, meta["name"])
    return 1

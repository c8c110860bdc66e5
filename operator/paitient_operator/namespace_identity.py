"""The gateways' shared identity in each namespace (``builders/gateway_identity.py``): made with
the namespace's first ModelDeployment, its bindings outside the namespace deleted with its last,
and the per-deployment objects of earlier operators removed as their deployments are reconciled.

Made under a lock per namespace, so a burst of deployments in one namespace writes the four
objects once: the first reconcile writes them, and the caches answer the rest.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from paitient_common.kubeapi import Kube, Obj
from paitient_operator import metrics
from paitient_operator.builders.gateway_identity import build_gateway_identity
from paitient_operator.builders.gateway_rbac import (
    GATEWAY_BINDING_LABEL,
    MD_UID_LABEL,
    RBAC_API,
    cross_namespace_binding_name,
)
from paitient_operator.builders.metadata import MANAGED_BY
from paitient_operator.children import Outcome, sync_child
from paitient_operator.cluster_view import ClusterView

log = logging.getLogger(__name__)
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}


def legacy_objects(namespace: str, name: str, system_namespace: str) -> list[Obj]:
    """How an earlier operator's per-deployment bindings are looked up (pure): a RoleBinding
    named after the deployment and owned by it, and two bindings elsewhere labelled with its
    uid. Its per-deployment ServiceAccount, owned by the deployment too, grants nothing without
    them and goes with the deployment (the operator has no right to delete ServiceAccounts)."""
    elsewhere = cross_namespace_binding_name(namespace, name)
    gateway = {**MANAGED, GATEWAY_BINDING_LABEL: "true"}
    return [
        {"apiVersion": RBAC_API, "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": namespace, "labels": MANAGED}},
        {"apiVersion": RBAC_API, "kind": "RoleBinding",
         "metadata": {"name": elsewhere, "namespace": system_namespace, "labels": gateway}},
        {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding",
         "metadata": {"name": elsewhere, "labels": gateway}},
    ]  # fmt: skip


def _owned_by(obj: Obj, uid: str) -> bool:
    meta = obj.get("metadata") or {}
    refs = meta.get("ownerReferences") or []
    labels = meta.get("labels") or {}
    return any(r.get("uid") == uid for r in refs) or labels.get(MD_UID_LABEL) == uid


@dataclass
class NamespaceIdentity:
    kube: Kube
    system_namespace: str
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def _lock(self, namespace: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(namespace, threading.Lock())

    def ensure(self, namespace: str, view: ClusterView) -> dict[str, Outcome]:
        """Bring the namespace's four objects in line; what was written, by description."""
        outcomes: dict[str, Outcome] = {}
        with self._lock(namespace):
            ns = view.namespace(namespace)
            uid = (ns or {}).get("metadata", {}).get("uid")
            for desired in build_gateway_identity(namespace, uid, self.system_namespace):
                outcome, obj = sync_child(self.kube, desired, view.live(desired))
                if outcome != "unchanged":
                    metrics.CHILD_WRITES.labels(desired["kind"], outcome).inc()
                    view.written(obj)
                    outcomes[_describe(desired)] = outcome
        return outcomes

    def release(self, namespace: str, view: ClusterView) -> int:
        """Delete the two bindings outside the namespace (the rights beyond it) if no
        ModelDeployment is left in it; how many went. The ServiceAccount and its RoleBinding in
        the namespace stay until the namespace goes (the operator has no right to delete a
        ServiceAccount, and they grant nothing outside it)."""
        with self._lock(namespace):
            if view.model_deployments(namespace):
                return 0
            deleted = 0
            for obj in build_gateway_identity(namespace, None, self.system_namespace)[2:]:
                meta = obj["metadata"]
                if self.kube.delete(
                    obj["apiVersion"], obj["kind"], meta["name"], namespace=meta.get("namespace")
                ):
                    deleted += 1
            if deleted:
                log.info("deleted the gateway identity of %s: its last deployment went", namespace)
            return deleted

    def remove_legacy(self, namespace: str, name: str, uid: str, view: ClusterView) -> int:
        """Delete the per-deployment identity an earlier operator made for this deployment."""
        deleted = 0
        for ref in legacy_objects(namespace, name, self.system_namespace):
            live = view.live(ref)
            if live is False:
                continue
            if live is not None and _owned_by(live, uid):
                meta = ref["metadata"]
                deleted += self.kube.delete(
                    ref["apiVersion"], ref["kind"], meta["name"], namespace=meta.get("namespace")
                )
        if deleted:
            log.info("removed %d per-deployment gateway objects of %s/%s", deleted, namespace, name)
        return deleted


def _describe(obj: Obj) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta['name']}"

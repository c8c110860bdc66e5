"""Which collections the operator keeps in its caches, and what of each (pure definitions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from paitient_common.kubeapi import Obj
from paitient_common.kubeasync import Query
from paitient_common.resources import modeldeployment as md_res
from paitient_common.resources import tenant as tenant_res
from paitient_common.resources import usagereport as ur_res
from paitient_common.secrets import KEYS_LABEL
from paitient_operator.builders.autoscalers import HPA_API_VERSION, KEDA_API_VERSION, SCALED_OBJECT
from paitient_operator.builders.gateway_rbac import GATEWAY_BINDING_LABEL
from paitient_operator.builders.metadata import MANAGED_BY, MD_LABEL
from paitient_operator.cache.projections import keep_metadata, keep_object, keep_pod, with_kind
from paitient_operator.cluster_view import (
    API_SERVER_SLICE_LABEL,
    API_SERVER_SLICE_NAMESPACE,
    scaler_entry,
    tenant_namespace,
)

MANAGED: Final = f"app.kubernetes.io/managed-by={MANAGED_BY}"


@dataclass(frozen=True)
class Watched:
    """One collection: what to list and watch, what of each object to keep."""

    name: str
    api_version: str
    kind: str
    label_selector: str | None = None
    namespace: str | None = None
    keep: Callable[[Obj], Obj] = field(default=keep_object, compare=False)
    # The key the store indexes objects by, for lookups of many (pods of a deployment, the
    # deployments of a namespace); None: not indexed.
    index: Callable[[Obj], str | None] | None = field(default=None, compare=False)

    def query(self) -> Query:
        return Query(self.api_version, self.kind, self.namespace, self.label_selector)

    def parse(self, obj: Obj) -> Obj:
        return self.keep(with_kind(obj, self.api_version, self.kind))

    def holds(self, obj: Obj) -> bool:
        """Whether ``obj`` (a write's answer) belongs here: same kind, selector labels."""
        if (obj.get("apiVersion"), obj.get("kind")) != (self.api_version, self.kind):
            return False
        if self.namespace and (obj.get("metadata") or {}).get("namespace") != self.namespace:
            return False
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for term in (self.label_selector or "").split(","):
            key, _, value = term.partition("=")
            if key and (key not in labels or (value and labels[key] != value)):
                return False
        return True


def namespace_of(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def deployment_of_pod(pod: Obj) -> str | None:
    """``namespace/<ModelDeployment>`` of a model pod."""
    meta = pod.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(MD_LABEL)
    return f"{meta.get('namespace')}/{owner}" if owner else None


def scaled_deployment(scaler: Obj) -> str | None:
    """``namespace/<name>`` of the deployment an HPA or ScaledObject scales (its Deployment or
    its ModelDeployment, which share the name)."""
    entry = scaler_entry(scaler)
    return "/".join(entry[0]) if entry is not None else None


MODEL_DEPLOYMENTS: Final = Watched(
    "modeldeployments", md_res.API_VERSION, md_res.KIND, index=namespace_of
)
DEPLOYMENTS: Final = Watched("deployments", "apps/v1", "Deployment", MANAGED)
SERVICES: Final = Watched("services", "v1", "Service", MANAGED)
SERVICE_ACCOUNTS: Final = Watched("serviceaccounts", "v1", "ServiceAccount", MANAGED)
CLAIMS: Final = Watched("persistentvolumeclaims", "v1", "PersistentVolumeClaim", MANAGED)
NETWORK_POLICIES: Final = Watched(
    "networkpolicies", "networking.k8s.io/v1", "NetworkPolicy", MANAGED
)
ROLE_BINDINGS: Final = Watched(
    "rolebindings", "rbac.authorization.k8s.io/v1", "RoleBinding", MANAGED
)
CLUSTER_ROLE_BINDINGS: Final = Watched(
    "clusterrolebindings",
    "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding",
    f"{GATEWAY_BINDING_LABEL}=true",
)
CERTIFICATES: Final = Watched("certificates", "cert-manager.io/v1", "Certificate", MANAGED)
PODS: Final = Watched("pods", "v1", "Pod", MD_LABEL, keep=keep_pod, index=deployment_of_pod)
STORAGE_CLASSES: Final = Watched("storageclasses", "storage.k8s.io/v1", "StorageClass")
TENANTS: Final = Watched("tenants", tenant_res.API_VERSION, tenant_res.KIND, index=tenant_namespace)
AUTOSCALERS: Final = Watched(
    "horizontalpodautoscalers",
    HPA_API_VERSION,
    "HorizontalPodAutoscaler",
    index=scaled_deployment,
)
# Watched where KEDA's CRDs are served when the operator starts (``Controller.extra``).
SCALED_OBJECTS: Final = Watched(
    "scaledobjects", KEDA_API_VERSION, SCALED_OBJECT, index=scaled_deployment
)
API_SERVER_SLICES: Final = Watched(
    "apiserverslices",
    "discovery.k8s.io/v1",
    "EndpointSlice",
    f"{API_SERVER_SLICE_LABEL}=kubernetes",
    API_SERVER_SLICE_NAMESPACE,
)
NAMESPACES: Final = Watched("namespaces", "v1", "Namespace")
QUOTAS: Final = Watched("resourcequotas", "v1", "ResourceQuota", MANAGED)


def key_secrets(system_namespace: str) -> Watched:
    """The tenants' key Secrets, in the system namespace (the one namespace whose Secrets the
    operator may list), without their records."""
    return Watched(
        "keysecrets", "v1", "Secret", f"{KEYS_LABEL}=true", system_namespace, keep=keep_metadata
    )


USAGE_REPORTS: Final = Watched("usagereports", ur_res.API_VERSION, ur_res.KIND)

# A ModelDeployment's owned children, by kind, in the order the reconciler looks them up.
CHILDREN: Final = (
    DEPLOYMENTS,
    SERVICES,
    SERVICE_ACCOUNTS,
    CLAIMS,
    NETWORK_POLICIES,
    ROLE_BINDINGS,
    CLUSTER_ROLE_BINDINGS,
)
AROUND: Final = (NAMESPACES, STORAGE_CLASSES, TENANTS, AUTOSCALERS, API_SERVER_SLICES)
TENANT_CHILDREN: Final = (QUOTAS, USAGE_REPORTS)  # and key_secrets(system namespace)

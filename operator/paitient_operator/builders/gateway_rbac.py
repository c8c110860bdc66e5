"""What a model pod's gateway may do with the Kubernetes API: the three roles it is bound to.

The gateway watches the key records, the pepper and the tiers in the operator's system namespace
and the Tenants (client IDs, suspension), reads a key Secret or a Tenant its caches lack by GET,
watches its own ModelDeployment (access list, limits) by name and writes its UsageReport. Three
roles hold those rights, each as narrow as RBAC allows; ``gateway_identity`` binds them to the
ServiceAccount the gateways of one namespace share.

The roles are static and the operator creates them at start (``bootstrap.py``); it may, without
RBAC's escalate right, because it holds every right they grant.

Earlier operators bound them to one ServiceAccount per ModelDeployment, with two bindings outside
its namespace labelled with its uid (``build_gateway_cross_namespace_bindings``): those are
recognised here so the operator can remove them (``gateway_bindings.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_common.resources.shared import GROUP
from paitient_common.secrets import TIERS_CONFIGMAP
from paitient_operator.builders.metadata import MANAGED_BY, MD_LABEL, Manifest

RBAC_API: Final = "rbac.authorization.k8s.io/v1"
NAMESPACE_ROLE: Final = "paitient-gateway"  # ClusterRole, bound per namespace
TENANTS_ROLE: Final = "paitient-gateway-tenants"  # ClusterRole, bound cluster-wide
KEYS_ROLE: Final = "paitient-gateway-keys"  # Role in the system namespace
GATEWAY_BINDING_LABEL: Final = "paitient.ai/gateway-binding"
MD_NAMESPACE_LABEL: Final = "paitient.ai/modeldeployment-namespace"
MD_UID_LABEL: Final = "paitient.ai/modeldeployment-uid"
ROLE_LABELS: Final = {
    "app.kubernetes.io/managed-by": MANAGED_BY,
    "app.kubernetes.io/part-of": "paitient",
}


def build_gateway_roles(system_namespace: str) -> list[Manifest]:
    """The three roles (pure). Listing Secrets cannot be narrowed by label in RBAC, and key
    Secrets are named per tenant, so the system namespace should hold nothing but the operator's
    own Secrets. The tiers ConfigMap is listed and watched by name (a ``metadata.name`` field
    selector, which RBAC's ``resourceNames`` covers)."""
    return [
        {
            "apiVersion": RBAC_API,
            "kind": "ClusterRole",
            "metadata": {"name": NAMESPACE_ROLE, "labels": ROLE_LABELS},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["modeldeployments"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": [GROUP],
                    "resources": ["usagereports"],
                    "verbs": ["get", "create", "patch"],
                },
            ],
        },
        {
            "apiVersion": RBAC_API,
            "kind": "ClusterRole",
            "metadata": {"name": TENANTS_ROLE, "labels": ROLE_LABELS},
            "rules": [
                {"apiGroups": [GROUP], "resources": ["tenants"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": RBAC_API,
            "kind": "Role",
            "metadata": {"name": KEYS_ROLE, "namespace": system_namespace, "labels": ROLE_LABELS},
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [TIERS_CONFIGMAP],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
    ]


def _subject(md: ModelDeployment) -> list[dict[str, str]]:
    return [{"kind": "ServiceAccount", "name": md.name, "namespace": md.namespace}]


def _role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def cross_namespace_binding_name(namespace: str, name: str) -> str:
    """``paitient-gateway.<namespace>.<name>``: a namespace name has no dots, so two
    ModelDeployments never share it."""
    return f"paitient-gateway.{namespace}.{name}"


def _cross_namespace_labels(md: ModelDeployment, uid: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        GATEWAY_BINDING_LABEL: "true",
        MD_LABEL: md.name,
        MD_NAMESPACE_LABEL: md.namespace,
        MD_UID_LABEL: uid,
    }


def build_gateway_cross_namespace_bindings(
    md: ModelDeployment, uid: str, system_namespace: str
) -> list[Manifest]:
    """An earlier operator's RoleBinding in the system namespace and ClusterRoleBinding for one
    deployment (pure): what ``gateway_bindings`` finds and removes."""
    name = cross_namespace_binding_name(md.namespace, md.name)
    labels = _cross_namespace_labels(md, uid)
    return [
        {
            "apiVersion": RBAC_API,
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": system_namespace, "labels": labels},
            "roleRef": _role_ref("Role", KEYS_ROLE),
            "subjects": _subject(md),
        },
        {
            "apiVersion": RBAC_API,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": _role_ref("ClusterRole", TENANTS_ROLE),
            "subjects": _subject(md),
        },
    ]


def gateway_bindings_to_delete(
    bindings: Iterable[Mapping[str, Any]], live_uids: Iterable[str]
) -> list[Mapping[str, Any]]:
    """An earlier operator's per-deployment bindings whose ModelDeployment no longer exists
    (pure); a namespace's shared bindings carry no deployment's uid and are never among them."""
    alive = set(live_uids)
    return [
        b
        for b in bindings
        if (labels := b.get("metadata", {}).get("labels") or {}).get(GATEWAY_BINDING_LABEL)
        == "true"
        and MD_UID_LABEL in labels
        and labels[MD_UID_LABEL] not in alive
    ]

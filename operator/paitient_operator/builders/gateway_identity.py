"""The identity the gateways of one namespace share, and the bindings that give it its rights.

Every model pod in a namespace runs as one ServiceAccount, ``paitient-gateway``; four objects per
namespace give it the three gateway roles (``gateway_rbac.build_gateway_roles``):

- the ServiceAccount and a RoleBinding in the namespace (its ModelDeployments, its UsageReports);
- a RoleBinding in the system namespace (key Secrets, pepper, tiers) and a ClusterRoleBinding
  (Tenants). A namespaced object cannot own these, so they name the namespace in a label and
  are owned by the Namespace object itself: deleting the namespace takes them with it, and the
  operator deletes them when the namespace's last ModelDeployment goes.

The rights are the ones each deployment's own account had before (that RoleBinding already
covered every ModelDeployment and UsageReport of the namespace, and the other two are
cluster-wide by nature), with four objects per namespace instead of four per deployment.
"""

from __future__ import annotations

from typing import Any, Final

from paitient_operator.builders.gateway_rbac import (
    GATEWAY_BINDING_LABEL,
    KEYS_ROLE,
    MD_NAMESPACE_LABEL,
    NAMESPACE_ROLE,
    RBAC_API,
    TENANTS_ROLE,
)
from paitient_operator.builders.metadata import MANAGED_BY, Manifest

GATEWAY_ACCOUNT: Final = "paitient-gateway"


def shared_binding_name(namespace: str) -> str:
    """``paitient-gateway.<namespace>``, the name of the bindings outside the namespace."""
    return f"{GATEWAY_ACCOUNT}.{namespace}"


def identity_labels(namespace: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        GATEWAY_BINDING_LABEL: "true",
        MD_NAMESPACE_LABEL: namespace,
    }


def _role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def _owned_by_namespace(namespace: str, uid: str | None) -> dict[str, Any]:
    if not uid:
        return {}
    return {
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": uid}
        ]
    }


def build_gateway_identity(
    namespace: str, namespace_uid: str | None, system_namespace: str
) -> list[Manifest]:
    """The ServiceAccount and its three bindings (pure); ``namespace_uid`` makes the two
    outside the namespace the Namespace's dependents."""
    labels = identity_labels(namespace)
    subjects = [{"kind": "ServiceAccount", "name": GATEWAY_ACCOUNT, "namespace": namespace}]
    elsewhere = {
        "name": shared_binding_name(namespace),
        "labels": labels,
        **_owned_by_namespace(namespace, namespace_uid),
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": GATEWAY_ACCOUNT, "namespace": namespace, "labels": labels},
            "automountServiceAccountToken": False,  # only the gateway gets a projected token
        },
        {
            "apiVersion": RBAC_API,
            "kind": "RoleBinding",
            "metadata": {"name": GATEWAY_ACCOUNT, "namespace": namespace, "labels": labels},
            "roleRef": _role_ref("ClusterRole", NAMESPACE_ROLE),
            "subjects": subjects,
        },
        {
            "apiVersion": RBAC_API,
            "kind": "RoleBinding",
            "metadata": {**elsewhere, "namespace": system_namespace},
            "roleRef": _role_ref("Role", KEYS_ROLE),
            "subjects": subjects,
        },
        {
            "apiVersion": RBAC_API,
            "kind": "ClusterRoleBinding",
            "metadata": elsewhere,
            "roleRef": _role_ref("ClusterRole", TENANTS_ROLE),
            "subjects": subjects,
        },
    ]

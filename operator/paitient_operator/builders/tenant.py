"""Pure builders for what the operator makes for each Tenant: its namespace, a default-deny
NetworkPolicy, a ResourceQuota drawn from its tier, and the Secret of its API-key records.

Children in the tenant's namespace carry the tenant as controller owner (a cluster-scoped owner
may own namespaced objects), so they go when the tenant goes.
"""

from __future__ import annotations

from typing import Any, Final

from paitient_common.resources.tenant import Tenant
from paitient_common.secrets import KEYS_LABEL, keys_secret_name
from paitient_common.tiers import Tier

Manifest = dict[str, Any]

TENANT_LABEL: Final = "paitient.ai/tenant"
MANAGED_BY: Final = "paitient-operator"
QUOTA_NAME: Final = "paitient-tier"
DEFAULT_DENY_NAME: Final = "paitient-default-deny"
# Storage a tier's deployments may claim: a model cache each, generously sized.
STORAGE_PER_DEPLOYMENT_GI: Final = 200


def tenant_labels(tenant: Tenant) -> dict[str, str]:
    return {TENANT_LABEL: tenant.name, "app.kubernetes.io/managed-by": MANAGED_BY}


def build_namespace(tenant: Tenant) -> Manifest:
    """The tenant's namespace, enforcing Pod Security ``restricted`` (and warning on it)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": tenant.namespace,
            "labels": {
                **tenant_labels(tenant),
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
        },
    }


def build_default_deny(tenant: Tenant) -> Manifest:
    """Deny all ingress and egress in the namespace; each ModelDeployment's own policy opens
    exactly what its pods need (policies are additive)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": DEFAULT_DENY_NAME,
            "namespace": tenant.namespace,
            "labels": tenant_labels(tenant),
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def build_quota(tenant: Tenant, tier: Tier) -> Manifest:
    """The backstop behind the tier rules the operator checks itself."""
    deployments = tier.max_deployments
    hard = {
        "count/modeldeployments.paitient.ai": str(deployments),
        # Each deployment's pods during a rollout (maxSurge 0) plus room for replicas.
        "pods": str(max(deployments * 4, 1)),
        "requests.storage": f"{max(deployments, 1) * STORAGE_PER_DEPLOYMENT_GI}Gi",
        "persistentvolumeclaims": str(max(deployments, 1)),
        "requests.nvidia.com/gpu": str(tier.max_gpus if tier.gpus_allowed else 0),
    }
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": QUOTA_NAME,
            "namespace": tenant.namespace,
            "labels": tenant_labels(tenant),
        },
        "spec": {"hard": hard},
    }


def build_keys_secret(tenant: Tenant, system_namespace: str) -> Manifest:
    """The Secret that holds the tenant's API-key records (hashes only), in the system
    namespace where the front door and the gateways read them. Created empty; the admin CLI
    adds records, so the operator never overwrites ``data``."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": keys_secret_name(tenant.name),
            "namespace": system_namespace,
            "labels": {**tenant_labels(tenant), KEYS_LABEL: "true"},
            "annotations": {"paitient.ai/client-id": tenant.spec.client_id},
        },
    }

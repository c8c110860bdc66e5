"""What the operator makes once, at start: its system namespace, the API-key pepper, the
ConfigMap that publishes the tiers (read by the admin CLI and the front door), and the roles the
gateways are bound to.

The pepper is created once with 32 random bytes and never rewritten: every stored key hash
depends on it.
"""

from __future__ import annotations

import base64
import logging
import secrets

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.secrets import PEPPER_KEY, PEPPER_SECRET, TIERS_CONFIGMAP
from paitient_operator.builders.gateway_rbac import build_gateway_roles
from paitient_operator.children import sync_child
from paitient_operator.config import OperatorConfig

log = logging.getLogger(__name__)

LABELS = {
    "app.kubernetes.io/managed-by": "paitient-operator",
    "app.kubernetes.io/part-of": "paitient",
}


def build_tiers_configmap(config: OperatorConfig) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": TIERS_CONFIGMAP,
            "namespace": config.system_namespace,
            "labels": LABELS,
        },
        "data": {
            name: tier.model_dump_json(by_alias=True) for name, tier in sorted(config.tiers.items())
        },
    }


def build_pepper_secret(config: OperatorConfig, pepper: bytes) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": PEPPER_SECRET, "namespace": config.system_namespace, "labels": LABELS},
        "data": {PEPPER_KEY: base64.b64encode(pepper).decode()},
    }


def ensure_system_namespace(kube: Kube, config: OperatorConfig) -> None:
    """The system namespace, made if missing (the chart's release namespace always exists; a
    bare operator makes its own): the Lease replicas elect their leader on lives there."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": config.system_namespace},
    }
    if kube.get("v1", "Namespace", config.system_namespace) is None:
        _create_if_absent(kube, namespace)


def ensure_system_objects(kube: Kube, config: OperatorConfig) -> None:
    ensure_system_namespace(kube, config)
    if kube.get("v1", "Secret", PEPPER_SECRET, namespace=config.system_namespace) is None:
        _create_if_absent(kube, build_pepper_secret(config, secrets.token_bytes(32)))
    sync_child(kube, build_tiers_configmap(config))
    for role in build_gateway_roles(config.system_namespace):
        _ensure_role(kube, role)


def _ensure_role(kube: Kube, role: Obj) -> None:
    """Create the role, or bring it up to date. RBAC allows that without "escalate" because the
    operator holds every right the role grants (the Helm chart gives it those)."""
    try:
        sync_child(kube, role)
    except KubeError as exc:
        if exc.status == 403:
            log.error(
                "the operator may not create or update %s %s, which the gateways need (%s): "
                "give it the RBAC of the Helm chart (docs/helm.md#rbac)",
                role["kind"], role["metadata"]["name"], exc.message,
            )  # fmt: skip
        raise


def _create_if_absent(kube: Kube, obj: Obj) -> None:
    try:
        kube.create(obj)
    except KubeError as exc:
        if exc.status != 409:  # another replica made it first: keep theirs
            raise

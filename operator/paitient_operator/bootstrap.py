"""What the operator makes once, at start: its system namespace, the API-key pepper, the
ConfigMap that publishes the tiers (read by the admin CLI and the front door), and the roles the
gateways are bound to (where the Helm chart has not installed them already).

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


def ensure_system_objects(kube: Kube, config: OperatorConfig) -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": config.system_namespace},
    }
    if kube.get("v1", "Namespace", config.system_namespace) is None:
        _create_if_absent(kube, namespace)
    if kube.get("v1", "Secret", PEPPER_SECRET, namespace=config.system_namespace) is None:
        _create_if_absent(kube, build_pepper_secret(config, secrets.token_bytes(32)))
    sync_child(kube, build_tiers_configmap(config))
    for role in build_gateway_roles(config.system_namespace):
        _ensure_role(kube, role)


def _ensure_role(kube: Kube, role: Obj) -> None:
    """Create the role, or bring its rules up to date. Where the Helm chart installed it, the
    operator may only read and bind it (writing would need RBAC's escalate right): then a
    difference is reported, not fixed."""
    kind, meta = role["kind"], role["metadata"]
    try:
        live = kube.get(role["apiVersion"], kind, meta["name"], namespace=meta.get("namespace"))
        if live is None:
            _create_if_absent(kube, role)
        elif live.get("rules") != role["rules"]:
            kube.patch(
                role["apiVersion"],
                kind,
                meta["name"],
                {"rules": role["rules"]},
                namespace=meta.get("namespace"),
            )
    except KubeError as exc:
        if exc.status != 403:
            raise
        log.warning(
            "%s %s is missing or differs from what gateways need, and this operator may not "
            "write it (%s): install or upgrade the Helm chart, which ships it",
            kind, meta["name"], exc.reason,
        )  # fmt: skip


def _create_if_absent(kube: Kube, obj: Obj) -> None:
    try:
        kube.create(obj)
    except KubeError as exc:
        if exc.status != 409:  # another replica made it first: keep theirs
            raise

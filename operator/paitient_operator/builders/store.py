"""A model pod's way to the shared store: the gateway's environment, the Secret that carries the
password (and the CA) into the ModelDeployment's namespace, and the NetworkPolicy's way out.

Least privilege: the operator holds the store's password (the chart gives it from its Secret);
each ModelDeployment gets its own copy, ``<name>-store``, owned by it (collected with it) and
read only by the kubelet, which puts the password in the gateway's environment
(``secretKeyRef``) and the CA in a file mounted into the gateway alone. No workload's
ServiceAccount may read Secrets, and vLLM sees neither.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any, Final

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_common.service_dns import service_of
from paitient_operator.builders.metadata import Manifest, common_labels
from paitient_operator.config import StoreConfig

PASSWORD_KEY: Final = "password"  # noqa: S105 - a key's name
CA_KEY: Final = "ca.crt"
VOLUME_STORE_CA: Final = "store-ca"
STORE_CA_DIR: Final = "/etc/paitient/store-ca"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"


def store_secret_name(md: ModelDeployment) -> str:
    return f"{md.name}-store"


def build_store_secret(md: ModelDeployment, store: StoreConfig, ca_pem: str) -> Manifest | None:
    """The copy of the store's password (and CA) in the ModelDeployment's namespace; None when
    the gateway needs neither."""
    data: dict[str, str] = {}
    if store.password is not None:
        data[PASSWORD_KEY] = _b64(store.password.get_secret_value())
    if store.ca_file:
        data[CA_KEY] = _b64(ca_pem)
    if not store.url or not data:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": store_secret_name(md),
            "namespace": md.namespace,
            "labels": common_labels(md),
        },
        "data": data,
    }


def store_env(md: ModelDeployment, store: StoreConfig) -> list[dict[str, Any]]:
    """``PAITIENT_STORE_*`` for the gateway container (empty without a store)."""
    if not store.url:
        return []
    env: list[dict[str, Any]] = [{"name": "PAITIENT_STORE_URL", "value": store.url}]
    if store.password is not None:
        ref = {"name": store_secret_name(md), "key": PASSWORD_KEY}
        env.append({"name": "PAITIENT_STORE_PASSWORD", "valueFrom": {"secretKeyRef": ref}})
    if store.ca_file:
        env.append({"name": "PAITIENT_STORE_CA_FILE", "value": f"{STORE_CA_DIR}/{CA_KEY}"})
    return env


def store_volumes(md: ModelDeployment, store: StoreConfig) -> list[dict[str, Any]]:
    if not (store.url and store.ca_file):
        return []
    secret = {
        "secretName": store_secret_name(md),
        "items": [{"key": CA_KEY, "path": CA_KEY}],  # the CA only: the password stays env
        "defaultMode": 0o444,
    }
    return [{"name": VOLUME_STORE_CA, "secret": secret}]


def store_mounts(store: StoreConfig) -> list[dict[str, Any]]:
    if not (store.url and store.ca_file):
        return []
    return [{"name": VOLUME_STORE_CA, "mountPath": STORE_CA_DIR, "readOnly": True}]


def store_egress(store: StoreConfig) -> dict[str, Any] | None:
    """The NetworkPolicy egress rule to the store (pure): a Service's namespace
    (``name.namespace.svc``), an IP's address, or, for another host name (which a policy cannot
    name), the store's port anywhere; the store's own policy decides who gets in."""
    settings = store.settings()
    if settings is None:
        return None
    ports = [{"protocol": "TCP", "port": settings.port}]
    service = service_of(settings.host)
    if service is not None:
        selector = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: service.namespace}}}
        return {"to": [selector], "ports": ports}
    try:
        address = ipaddress.ip_address(settings.host)
    except ValueError:
        return {"ports": ports}
    return {"to": [{"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}], "ports": ports}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()

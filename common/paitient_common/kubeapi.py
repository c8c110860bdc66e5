"""A small, typed-enough door to the Kubernetes API for plain-dict objects.

The operator, the admin CLI, the front door and the gateway all handle manifests as dicts (the
builders return dicts). This wraps the official client's transport (auth, TLS, kubeconfig) with
a few verbs (Server-Side Apply among them) over a fixed table of the kinds we use, so there is no
discovery round-trip and one place maps kinds to URLs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from kubernetes import client, config

Obj = dict[str, Any]

# (apiVersion, kind) -> (plural, namespaced)
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("v1", "Event"): ("events", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False),
    ("discovery.k8s.io/v1", "EndpointSlice"): ("endpointslices", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("paitient.ai/v1alpha1", "ModelDeployment"): ("modeldeployments", True),
    ("paitient.ai/v1alpha1", "Tenant"): ("tenants", False),
    ("paitient.ai/v1alpha1", "UsageReport"): ("usagereports", True),
    ("cert-manager.io/v1", "Certificate"): ("certificates", True),
    ("cert-manager.io/v1", "ClusterIssuer"): ("clusterissuers", False),  # the issuer tests make
    ("coordination.k8s.io/v1", "Lease"): ("leases", True),
    ("keda.sh/v1alpha1", "ScaledObject"): ("scaledobjects", True),
}

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON


def load_configuration(path: str | None = None) -> client.Configuration:
    """The client configuration of ``path``, else ``$KUBECONFIG``/``~/.kube/config``, else the
    in-cluster one (whose token the configuration re-reads as the kubelet rotates it).

    ``$KUBECONFIG`` is read now: the client library reads it once, when it is imported, so a
    value set later (`paitient-operator --kubeconfig`) would otherwise be missed.
    """
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=path or os.environ.get("KUBECONFIG") or None,
            client_configuration=configuration,
        )
    except config.ConfigException:
        if path:
            raise
        config.load_incluster_config(client_configuration=configuration)
    return configuration


class KubeError(RuntimeError):
    """The API answered with an error status; ``status`` and ``reason`` say which."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def resource_path(
    api_version: str, kind: str, namespace: str | None = None, name: str | None = None
) -> str:
    """``/apis/apps/v1/namespaces/ns/deployments/name`` for a kind in ``RESOURCES``."""
    plural, namespaced = RESOURCES[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespaced and namespace:
        base += f"/namespaces/{namespace}"
    path = f"{base}/{plural}"
    return f"{path}/{name}" if name else path


@dataclass
class Kube:
    """The verbs the project needs, over plain dicts. ``timeout`` (seconds) bounds each request:
    without one, a request to an API server that stopped answering (a stalled network) waits
    forever, and so does a thread or a shutdown waiting on it."""

    api: client.ApiClient
    timeout: float | None = None

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, pool_size: int = 32, timeout: float | None = None
    ) -> Kube:
        """Load ``path``, else ``$KUBECONFIG``/``~/.kube/config``, else the in-cluster config.

        ``pool_size`` connections are kept open: the client's default of 10 is smaller than the
        operator's worker pool, and every extra connection would pay a new TLS handshake.
        """
        configuration = load_configuration(path)
        configuration.connection_pool_maxsize = pool_size
        return cls(client.ApiClient(configuration), timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        m, url, hdrs, data, _ = self.api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = self.api.call_api(m, url, hdrs, data, _request_timeout=self.timeout)
        raw = response.read()
        try:
            payload: Obj = json.loads(raw) if raw else {}
        except ValueError:
            if response.status < 400:
                raise
            payload = {}  # an error the API server did not answer in JSON ("404 page not found")
        if response.status >= 400:
            raise KubeError(
                response.status, str(payload.get("reason", "")), str(payload.get("message", raw))
            )
        return payload

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        try:
            return self.request("GET", resource_path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        query = {"labelSelector": label_selector} if label_selector else None
        items = self.request("GET", resource_path(api_version, kind, namespace), query=query)
        return list(items.get("items", []))

    def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return self.request("POST", path, body=obj)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Obj,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        path = resource_path(api_version, kind, namespace, name)
        if subresource:
            path += f"/{subresource}"
        return self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    def apply(self, obj: Obj, *, field_manager: str, force: bool = False) -> Obj:
        """Server-Side Apply ``obj`` as ``field_manager`` (created if absent); return the object
        as stored. The API server merges it with what other managers set (lists by their merge
        keys) and records in ``managedFields`` which fields ``field_manager`` now owns; ``force``
        takes over fields another manager holds with a different value instead of answering
        409 Conflict."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        return self.request("PATCH", path, body=obj, query=query, content_type=APPLY_PATCH)

    def delete(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> bool:
        """True if it was there; deletion propagates to dependents in the background."""
        try:
            self.request("DELETE", resource_path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

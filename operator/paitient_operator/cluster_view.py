"""What the reconciler reads: the ModelDeployment itself, its children and pods, and around them
StorageClasses, the namespace's Tenant, autoscalers, the API server's addresses. Two ways to read
them: straight from the API (``ApiView``: tools, tests), or from the operator's watch-fed caches
(``CacheView``: the running operator, so a reconcile spends no request on a read), which the
reconciler feeds its own writes (``written``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from paitient_common.kubeapi import Kube, Obj
from paitient_common.resources import modeldeployment as md_res
from paitient_common.resources import tenant as tenant_res
from paitient_common.resources import usagereport as ur_res
from paitient_operator.builders.metadata import MD_LABEL

API_SERVER_SLICE_NAMESPACE = "default"
API_SERVER_SLICE_LABEL = "kubernetes.io/service-name"  # = "kubernetes" for the API server

Live = Obj | Literal[False] | None  # the object; None: absent; False: no copy here, ask the API


class ClusterView(Protocol):
    def model_deployment(self, namespace: str, name: str) -> Obj | None: ...

    def model_deployments(self, namespace: str) -> list[Obj]: ...

    def live(self, desired: Obj) -> Live:
        """The live copy of a child the reconciler renders, as this view has it."""
        ...

    def pods(self, namespace: str, deployment: str) -> list[Obj]: ...

    def namespace(self, name: str) -> Obj | None: ...

    def storage_classes(self) -> list[Obj]: ...

    def tenant_of(self, namespace: str) -> Obj | None: ...

    def autoscaled(self, namespace: str, deployment: str) -> bool: ...

    def api_server_endpoints(self) -> list[tuple[str, int]]: ...

    def written(self, obj: Obj) -> None:
        """The API's answer to a write the reconciler made (a cache keeps it)."""
        ...

    def fetched(self, obj: Obj) -> None:
        """An object the reconciler read from the API (``live`` said False)."""
        ...

    def forget(self, obj: Obj) -> None:
        """An object the reconciler deleted."""
        ...

    # -- what the Tenant reconciler reads besides: every Tenant, every UsageReport ----------

    def tenant(self, name: str) -> Obj | None: ...

    def tenants(self) -> list[Obj]: ...

    def usage_reports(self) -> list[Obj]: ...


def slice_endpoints(endpoint_slice: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(ip, port) pairs of an EndpointSlice of the ``kubernetes`` Service (pure): the API
    server's own addresses, which a NetworkPolicy must allow for the gateway to reach it. Empty
    where the API server publishes none (a control plane on loopback, like the local one)."""
    ports = [int(p["port"]) for p in endpoint_slice.get("ports") or [] if p.get("port")]
    return sorted(
        (address, port)
        for endpoint in endpoint_slice.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready", True) is not False
        for address in endpoint.get("addresses") or []
        for port in ports
    )


def hpa_target(hpa: Mapping[str, Any]) -> str | None:
    """The Deployment an autoscaler scales, if it scales one (pure)."""
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    return str(ref["name"]) if ref.get("kind") == "Deployment" and ref.get("name") else None


def tenant_namespace(tenant: Mapping[str, Any]) -> str | None:
    return (tenant.get("status") or {}).get("namespace")


@dataclass
class ApiView:
    kube: Kube

    def model_deployment(self, namespace: str, name: str) -> Obj | None:
        return self.kube.get(md_res.API_VERSION, md_res.KIND, name, namespace=namespace)

    def model_deployments(self, namespace: str) -> list[Obj]:
        return self.kube.list(md_res.API_VERSION, md_res.KIND, namespace=namespace)

    def live(self, desired: Obj) -> Live:
        return False

    def pods(self, namespace: str, deployment: str) -> list[Obj]:
        return self.kube.list(
            "v1", "Pod", namespace=namespace, label_selector=f"{MD_LABEL}={deployment}"
        )

    def namespace(self, name: str) -> Obj | None:
        return self.kube.get("v1", "Namespace", name)

    def storage_classes(self) -> list[Obj]:
        return self.kube.list("storage.k8s.io/v1", "StorageClass")

    def tenant_of(self, namespace: str) -> Obj | None:
        tenants = self.kube.list(tenant_res.API_VERSION, tenant_res.KIND)
        return next((t for t in tenants if tenant_namespace(t) == namespace), None)

    def autoscaled(self, namespace: str, deployment: str) -> bool:
        hpas = self.kube.list("autoscaling/v2", "HorizontalPodAutoscaler", namespace=namespace)
        return any(hpa_target(h) == deployment for h in hpas)

    def api_server_endpoints(self) -> list[tuple[str, int]]:
        slices = self.kube.list(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            namespace=API_SERVER_SLICE_NAMESPACE,
            label_selector=f"{API_SERVER_SLICE_LABEL}=kubernetes",
        )
        return sorted({e for s in slices for e in slice_endpoints(s)})

    def written(self, obj: Obj) -> None:
        return None

    def fetched(self, obj: Obj) -> None:
        return None

    def forget(self, obj: Obj) -> None:
        return None

    def tenant(self, name: str) -> Obj | None:
        return self.kube.get(tenant_res.API_VERSION, tenant_res.KIND, name)

    def tenants(self) -> list[Obj]:
        return self.kube.list(tenant_res.API_VERSION, tenant_res.KIND)

    def usage_reports(self) -> list[Obj]:
        return self.kube.list(ur_res.API_VERSION, ur_res.KIND)

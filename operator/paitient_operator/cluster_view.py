"""What the reconciler reads: the ModelDeployment itself, its children and pods, and around them
StorageClasses, the namespace's Tenant, autoscalers, the API server's addresses. Two ways to read
them: straight from the API (``ApiView``: tools, tests), or from the operator's watch-fed caches
(``CacheView``: the running operator, so a reconcile spends no request on a read), which the
reconciler feeds its own writes (``written``)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.resources import modeldeployment as md_res
from paitient_common.resources import tenant as tenant_res
from paitient_common.resources import usagereport as ur_res
from paitient_operator.builders.autoscalers import HPA_API_VERSION, KEDA_API_VERSION, SCALED_OBJECT
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

    def autoscalers(self, namespace: str, name: str) -> list[Obj]:
        """HPAs and KEDA ScaledObjects scaling the Deployment ``name`` or the ModelDeployment
        ``name`` (``scaler_entry``'s form)."""
        ...

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


SCALED_KINDS = frozenset({"Deployment", "ModelDeployment"})


def scaler_entry(scaler: Mapping[str, Any]) -> tuple[tuple[str, str], Obj] | None:
    """An HPA or ScaledObject as the views keep it: keyed by (namespace, name of what it
    scales: a Deployment, or a ModelDeployment through its scale subresource, which share the
    name), with its kind, name and the uid of the ModelDeployment that owns it, if one does
    (pure). None for one that scales something else."""
    ref = (scaler.get("spec") or {}).get("scaleTargetRef") or {}
    kind = ref.get("kind", "Deployment")  # KEDA's default kind
    if kind not in SCALED_KINDS or not ref.get("name"):
        return None
    meta = scaler.get("metadata") or {}
    owner = next(
        (
            o.get("uid")
            for o in meta.get("ownerReferences") or []
            if o.get("kind") == "ModelDeployment" and o.get("controller")
        ),
        None,
    )
    entry = {
        "kind": scaler.get("kind"),
        "name": meta.get("name"),
        "owner": owner,
        "targetKind": kind,
    }
    return (str(meta.get("namespace")), str(ref["name"])), entry


def scaling(scalers: Iterable[Mapping[str, Any]], namespace: str, name: str) -> list[Obj]:
    """The entries (``scaler_entry``) of the HPAs and ScaledObjects among ``scalers`` that scale
    the deployment ``namespace/name`` (pure)."""
    entries = [scaler_entry(s) for s in scalers]
    return [e[1] for e in entries if e is not None and e[0] == (namespace, name)]


def tenant_namespace(tenant: Mapping[str, Any]) -> str | None:
    return (tenant.get("status") or {}).get("namespace")


def keda_installed(kube: Kube) -> bool:
    """Whether KEDA's API (its CRDs) is served: the API groups' list, which every client may
    read (a group's own path answers 404 in plain text when it is not served)."""
    group, version = KEDA_API_VERSION.split("/")
    groups = kube.request("GET", "/apis").get("groups") or []
    return any(
        g.get("name") == group and any(v.get("version") == version for v in g.get("versions") or [])
        for g in groups
    )


@dataclass
class KedaProbe:
    """``keda_installed``, asked at most every ``ttl`` seconds (a reconcile of a deployment
    with engine keda asks)."""

    kube: Kube
    ttl: float = 60.0
    _answer: bool = False
    _asked_at: float = -math.inf

    def installed(self) -> bool:
        now = time.monotonic()
        if now - self._asked_at >= self.ttl:
            self._answer, self._asked_at = keda_installed(self.kube), now
        return self._answer


@dataclass
class ApiView:
    kube: Kube
    keda: KedaProbe | None = None  # whether ScaledObjects can exist (asked once a minute)

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

    def autoscalers(self, namespace: str, name: str) -> list[Obj]:
        hpas = self.kube.list(HPA_API_VERSION, "HorizontalPodAutoscaler", namespace=namespace)
        return scaling([*hpas, *self.scaled_objects(namespace)], namespace, name)

    def scaled_objects(self, namespace: str) -> list[Obj]:
        """KEDA's ScaledObjects in ``namespace``; none where KEDA's CRDs are not served."""
        if not (self.keda or KedaProbe(self.kube)).installed():
            return []
        try:
            return self.kube.list(KEDA_API_VERSION, SCALED_OBJECT, namespace=namespace)
        except KubeError as exc:
            if exc.status != 404:  # KEDA's CRDs gone since the probe asked: no ScaledObject
                raise
            return []

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

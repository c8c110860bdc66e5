"""What the reconciler reads besides its own children: StorageClasses, the namespace's Tenant,
autoscalers, the API server's addresses. Two ways to read them: straight from the API (``ApiView``: tools, tests), or from
kopf's indices, in-memory copies kept current by watches (``IndexView``: the running operator,
so a reconcile spends no request on them)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.resources import tenant as tenant_res


class ClusterView(Protocol):
    def storage_classes(self) -> list[Obj]: ...

    def tenant_of(self, namespace: str) -> Obj | None: ...

    def autoscaled(self, namespace: str, deployment: str) -> bool: ...

    def autoscalers(self, namespace: str, name: str) -> list[Obj]:
        """HPAs and KEDA ScaledObjects scaling the Deployment ``name`` or the ModelDeployment
        ``name`` (``scaler_entry``'s form)."""
        ...

    def api_server_endpoints(self) -> list[tuple[str, int]]: ...

    def gateway_binding(self, kind: str, name: str) -> Obj | Literal[False] | None:
        """A gateway binding outside the deployment's namespace as last seen, None if absent,
        False if this view has no copy (then the caller reads it from the API)."""
        ...


KEDA_API_VERSION = "keda.sh/v1alpha1"
API_SERVER_SLICE_NAMESPACE = "default"
API_SERVER_SLICE_LABEL = "kubernetes.io/service-name"  # = "kubernetes" for the API server


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

    def storage_classes(self) -> list[Obj]:
        return self.kube.list("storage.k8s.io/v1", "StorageClass")

    def tenant_of(self, namespace: str) -> Obj | None:
        tenants = self.kube.list(tenant_res.API_VERSION, tenant_res.KIND)
        return next(
            (t for t in tenants if (t.get("status") or {}).get("namespace") == namespace), None
        )

    def autoscaled(self, namespace: str, deployment: str) -> bool:
        hpas = self.kube.list("autoscaling/v2", "HorizontalPodAutoscaler", namespace=namespace)
        return any(hpa_target(h) == deployment for h in hpas)

    def autoscalers(self, namespace: str, name: str) -> list[Obj]:
        found = self.kube.list("autoscaling/v2", "HorizontalPodAutoscaler", namespace=namespace)
        if (self.keda or KedaProbe(self.kube)).installed():
            try:
                found += self.kube.list(KEDA_API_VERSION, "ScaledObject", namespace=namespace)
            except KubeError as exc:
                if exc.status != 404:  # KEDA's CRDs gone since the probe asked: no ScaledObject
                    raise
        entries = [scaler_entry(s) for s in found]
        return [e[1] for e in entries if e is not None and e[0] == (namespace, name)]

    def gateway_binding(self, kind: str, name: str) -> Obj | Literal[False] | None:
        return False

    def api_server_endpoints(self) -> list[tuple[str, int]]:
        slices = self.kube.list(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            namespace=API_SERVER_SLICE_NAMESPACE,
            label_selector=f"{API_SERVER_SLICE_LABEL}=kubernetes",
        )
        return sorted({e for s in slices for e in slice_endpoints(s)})


@dataclass
class IndexView:
    """Over kopf indices: ``storage_classes`` keyed by None, ``tenants`` by namespace,
    ``autoscalers`` by (namespace, deployment), the API server's (ip, port) pairs by None, and
    per kind (RoleBinding, ClusterRoleBinding) the gateway bindings by name."""

    storage_class_index: Mapping[Any, Iterable[Obj]]
    tenant_index: Mapping[Any, Iterable[Obj]]
    autoscaler_index: Mapping[Any, Iterable[Obj]]
    api_server_index: Mapping[Any, Iterable[tuple[str, int]]] = field(default_factory=dict)
    gateway_binding_indices: Mapping[str, Mapping[Any, Iterable[Obj]]] | None = None
    scaled_object_index: Mapping[Any, Iterable[Obj]] = field(default_factory=dict)

    def storage_classes(self) -> list[Obj]:
        return [dict(sc) for sc in self.storage_class_index.get(None, ())]

    def tenant_of(self, namespace: str) -> Obj | None:
        return next((dict(t) for t in self.tenant_index.get(namespace, ())), None)

    def autoscaled(self, namespace: str, deployment: str) -> bool:
        # The index holds HPAs on the ModelDeployment too (scaler_entry): as ApiView, count
        # only those scaling the Deployment itself.
        entries = self.autoscaler_index.get((namespace, deployment), ())
        return any(isinstance(e, Mapping) and e.get("targetKind") == "Deployment" for e in entries)

    def autoscalers(self, namespace: str, name: str) -> list[Obj]:
        key = (namespace, name)
        found = [*self.autoscaler_index.get(key, ()), *self.scaled_object_index.get(key, ())]
        return [dict(e) for e in found if isinstance(e, Mapping)]

    def api_server_endpoints(self) -> list[tuple[str, int]]:
        return sorted(set(self.api_server_index.get(None, ())))

    def gateway_binding(self, kind: str, name: str) -> Obj | Literal[False] | None:
        if self.gateway_binding_indices is None or kind not in self.gateway_binding_indices:
            return False
        index = self.gateway_binding_indices[kind]
        return next((dict(b) for b in index.get(name, ())), None)

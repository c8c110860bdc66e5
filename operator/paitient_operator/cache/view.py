"""The reconciler's reads answered from the operator's caches (``cluster_view.ClusterView``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from paitient_common.kubeapi import Obj
from paitient_operator.cache import watched as w
from paitient_operator.cache.store import ClusterCache
from paitient_operator.cluster_view import Live, hpa_target, slice_endpoints


@dataclass
class CacheView:
    cache: ClusterCache

    def model_deployment(self, namespace: str, name: str) -> Obj | None:
        found = self.cache.get(w.MODEL_DEPLOYMENTS, namespace, name)
        # The reconciler adopts from it and may keep it: its own copy, not the cache's.
        return copy.deepcopy(found) if found is not None else None

    def model_deployments(self, namespace: str) -> list[Obj]:
        return self.cache.indexed(w.MODEL_DEPLOYMENTS, namespace)

    def live(self, desired: Obj) -> Live:
        watched = self.cache.holding(desired)
        if watched is None or watched not in self.cache.informers:
            return False  # not a kind the caches keep: the API answers
        meta = desired["metadata"]
        return self.cache.get(watched, meta.get("namespace"), meta["name"])

    def pods(self, namespace: str, deployment: str) -> list[Obj]:
        return self.cache.indexed(w.PODS, f"{namespace}/{deployment}")

    def namespace(self, name: str) -> Obj | None:
        return self.cache.get(w.NAMESPACES, None, name)

    def storage_classes(self) -> list[Obj]:
        return self.cache.values(w.STORAGE_CLASSES)

    def tenant_of(self, namespace: str) -> Obj | None:
        return next(iter(self.cache.indexed(w.TENANTS, namespace)), None)

    def autoscaled(self, namespace: str, deployment: str) -> bool:
        return any(
            hpa_target(h) == deployment
            for h in self.cache.values(w.AUTOSCALERS)
            if h["metadata"].get("namespace") == namespace
        )

    def api_server_endpoints(self) -> list[tuple[str, int]]:
        slices = self.cache.values(w.API_SERVER_SLICES)
        return sorted({e for s in slices for e in slice_endpoints(s)})

    def written(self, obj: Obj) -> None:
        self.cache.written(obj)

    def tenant(self, name: str) -> Obj | None:
        found = self.cache.get(w.TENANTS, None, name)
        return copy.deepcopy(found) if found is not None else None

    def tenants(self) -> list[Obj]:
        return self.cache.values(w.TENANTS)

    def usage_reports(self) -> list[Obj]:
        return self.cache.values(w.USAGE_REPORTS)

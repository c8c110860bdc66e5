"""The reconciler's reads answered from the operator's caches (``cluster_view.ClusterView``).

A kind no cache watches (the serving Secrets: the operator may not list Secrets outside its own
namespace) is answered from what the operator last wrote or read of it, for ``REMEMBER_SECONDS``:
within that time a reconcile sends no GET for it; after it, one GET refreshes it. A Secret
deleted by hand is thus put back by a reconcile at most that long after, as it was put back at
the next reconcile when every reconcile read it.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from paitient_common.kubeapi import Obj
from paitient_operator.cache import watched as w
from paitient_operator.cache.store import ClusterCache
from paitient_operator.cluster_view import ApiView, Live, scaler_entry, scaling, slice_endpoints

REMEMBER_SECONDS = 300.0


@dataclass
class CacheView:
    cache: ClusterCache
    # Asked for ScaledObjects when no cache watches them (KEDA installed after the start).
    api: ApiView | None = None
    remember_seconds: float = REMEMBER_SECONDS
    clock: Callable[[], float] = time.monotonic
    _remembered: dict[tuple[str, str, str, str], tuple[float, Obj]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def model_deployment(self, namespace: str, name: str) -> Obj | None:
        found = self.cache.get(w.MODEL_DEPLOYMENTS, namespace, name)
        # The reconciler adopts from it and may keep it: its own copy, not the cache's.
        return copy.deepcopy(found) if found is not None else None

    def model_deployments(self, namespace: str) -> list[Obj]:
        return self.cache.indexed(w.MODEL_DEPLOYMENTS, namespace)

    def live(self, desired: Obj) -> Live:
        watched = self.cache.holding(desired)
        meta = desired["metadata"]
        if watched is not None:
            return self.cache.get(watched, meta.get("namespace"), meta["name"])
        with self._lock:
            held = self._remembered.get(_key(desired))
        if held is None or self.clock() - held[0] > self.remember_seconds:
            return False  # not a kind the caches keep, nothing fresh remembered: ask the API
        return held[1]

    def pods(self, namespace: str, deployment: str) -> list[Obj]:
        return self.cache.indexed(w.PODS, f"{namespace}/{deployment}")

    def namespace(self, name: str) -> Obj | None:
        return self.cache.get(w.NAMESPACES, None, name)

    def storage_classes(self) -> list[Obj]:
        return self.cache.values(w.STORAGE_CLASSES)

    def tenant_of(self, namespace: str) -> Obj | None:
        return next(iter(self.cache.indexed(w.TENANTS, namespace)), None)

    def autoscalers(self, namespace: str, name: str) -> list[Obj]:
        key = f"{namespace}/{name}"
        found = self.cache.indexed(w.AUTOSCALERS, key)
        if w.SCALED_OBJECTS in self.cache.collections:
            found += self.cache.indexed(w.SCALED_OBJECTS, key)
        elif self.api is not None:  # KEDA's CRDs came after the caches started
            return [*_entries(found), *scaling(self.api.scaled_objects(namespace), namespace, name)]
        return _entries(found)

    def api_server_endpoints(self) -> list[tuple[str, int]]:
        slices = self.cache.values(w.API_SERVER_SLICES)
        return sorted({e for s in slices for e in slice_endpoints(s)})

    def written(self, obj: Obj) -> None:
        if self.cache.holding(obj) is not None:
            self.cache.written(obj)
        else:
            self.fetched(obj)

    def fetched(self, obj: Obj) -> None:
        if self.cache.holding(obj) is not None:
            return  # the cache has it from the watch
        with self._lock:
            self._remembered[_key(obj)] = (self.clock(), obj)

    def forget(self, obj: Obj) -> None:
        with self._lock:
            self._remembered.pop(_key(obj), None)

    def tenant(self, name: str) -> Obj | None:
        found = self.cache.get(w.TENANTS, None, name)
        return copy.deepcopy(found) if found is not None else None

    def tenants(self) -> list[Obj]:
        return self.cache.values(w.TENANTS)

    def usage_reports(self) -> list[Obj]:
        return self.cache.values(w.USAGE_REPORTS)


def _entries(scalers: list[Obj]) -> list[Obj]:
    return [entry[1] for s in scalers if (entry := scaler_entry(s)) is not None]


def _key(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"])

"""The controller of ModelDeployments and Tenants: caches, queues of what to reconcile, workers.

Every change the caches hear of (the ModelDeployment itself, one of its children or pods, the
StorageClasses, Tenants, the HPAs and KEDA ScaledObjects that scale it, or the API server's
addresses it depends on) puts the
deployments it concerns in the queue (``WorkQueue``: one entry per deployment however many
events, never two workers on one). Workers reconcile from the caches and feed their writes back
to them. At start, once every collection's first list is in, every deployment is queued: the
re-verification after a restart, from memory alone, writing only what differs.

Tenants have a queue and a worker of their own: a Tenant is reconciled when it changes, when
its quota is counted, when a gateway reports usage for it, when a deployment appears in or leaves
its namespace, and every minute (a billing period starts at a time, not on an event).

The native autoscaler's pass (``autoscaling.worker``) reads the caches too, and reconciles a
deployment whose replicas' loads call for a change through ``reconcile_with_loads``.

kopf runs the operator's life (start-up, leader election, liveness) and holds a Tenant's
deletion while it has deployments (its finalizer). The rest is here because kopf reads nothing
from a cache and handles every event of every object on its own, where a burst of hundreds of
objects needs the events of each folded into one reconcile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from paitient_common.kubeapi import Obj
from paitient_common.resources.modeldeployment import KIND
from paitient_operator import metrics
from paitient_operator.autoscaling.decision import ReplicaLoad
from paitient_operator.builders.gateway_rbac import MD_NAMESPACE_LABEL
from paitient_operator.builders.metadata import MD_LABEL
from paitient_operator.cache import watched as w
from paitient_operator.cache.store import ClusterCache
from paitient_operator.cache.view import CacheView
from paitient_operator.cluster_view import ApiView, scaler_entry, tenant_namespace
from paitient_operator.reconciler import Reconciler
from paitient_operator.usage import tenants_in
from paitient_operator.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name) of a ModelDeployment
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
TENANT_LOOK_SECONDS = 60.0  # every Tenant looked at this often (its billing period may roll)
TENANT_LABEL = "paitient.ai/tenant"
# Collections whose change may change every deployment (a StorageClass's encryption, the API
# server's addresses in every NetworkPolicy).
EVERYONE = (w.STORAGE_CLASSES, w.API_SERVER_SLICES)


def owners(watched: w.Watched, obj: Obj) -> list[Key]:
    """The deployments a change of ``obj`` concerns (pure), but for ``EVERYONE``'s and a
    Tenant's, which concern deployments by namespace."""
    meta = obj.get("metadata") or {}
    namespace, labels = meta.get("namespace") or "", meta.get("labels") or {}
    if watched == w.MODEL_DEPLOYMENTS:
        return [(namespace, meta["name"])]
    if watched == w.PODS:
        return [(namespace, labels[MD_LABEL])] if MD_LABEL in labels else []
    if watched in (w.AUTOSCALERS, w.SCALED_OBJECTS):  # it came, changed or went: yield or not
        entry = scaler_entry(obj)
        return [entry[0]] if entry is not None else []
    if MD_NAMESPACE_LABEL in labels and MD_LABEL in labels:  # an earlier operator's binding
        return [(labels[MD_NAMESPACE_LABEL], labels[MD_LABEL])]
    return [
        (namespace, ref["name"])
        for ref in meta.get("ownerReferences") or []
        if ref.get("kind") == KIND and ref.get("controller")
    ]


@dataclass
class Controller:
    reconciler: Reconciler
    cache: ClusterCache = field(init=False)
    workers: int = 8
    kubeconfig: str | None = None
    extra: Sequence[w.Watched] = ()
    # Reconciles a Tenant by name (one thread, queued).
    reconcile_tenant: Callable[[str], object] = lambda _name: None
    tenant_look_seconds: float = TENANT_LOOK_SECONDS
    queue: WorkQueue[Key] = field(default_factory=WorkQueue)
    tenants: WorkQueue[str] = field(default_factory=WorkQueue)
    _threads: list[threading.Thread] = field(default_factory=list)
    _failures: dict[Key, int] = field(default_factory=dict)
    _tombstones: dict[Key, Obj] = field(default_factory=dict)
    _started: float = 0.0
    _verified: bool = False
    _stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.key_secrets = w.key_secrets(self.reconciler.config.system_namespace)
        collections = [
            w.MODEL_DEPLOYMENTS, *w.CHILDREN, w.PODS, *w.AROUND, *w.TENANT_CHILDREN,
            self.key_secrets, *self.extra,
        ]  # fmt: skip
        self.cache = ClusterCache(
            collections, self.kubeconfig, on_object=self._heard, on_list=self._listed
        )
        self.view = CacheView(self.cache, ApiView(self.reconciler.kube, self.reconciler.keda))

    def start(self, sync_timeout: float = 120) -> None:
        """Caches first (the first list of each), then every deployment queued, then workers."""
        self._started = time.monotonic()
        self.cache.start()
        self.cache.wait_synced(sync_timeout)
        self.enqueue_all()
        self.enqueue_tenants()
        self._release_idle_identities()
        log.info(
            "caches synced in %.1f s: %s", time.monotonic() - self._started,
            ", ".join(f"{n} {c}" for n, c in self.cache.count().items() if c),
        )  # fmt: skip
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"reconcile-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for target, name in ((self._tenant_work, "tenants"), (self._look, "tenant-periods")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._note_verified()  # nothing to verify when there is no deployment

    def stop(self) -> None:
        self._stopping.set()
        self.queue.shut_down()
        self.tenants.shut_down()
        for thread in self._threads:
            thread.join(timeout=30)
        self.cache.stop()

    def enqueue(self, namespace: str, name: str) -> None:
        self.queue.add((namespace, name))

    def enqueue_all(self, namespace: str | None = None) -> None:
        """Every deployment, or every one in ``namespace``."""
        deployments = (
            self.cache.values(w.MODEL_DEPLOYMENTS)
            if namespace is None
            else self.cache.indexed(w.MODEL_DEPLOYMENTS, namespace)
        )
        for md in deployments:
            self.queue.add((md["metadata"]["namespace"], md["metadata"]["name"]))

    def _release_idle_identities(self) -> None:
        """The gateway identity of each namespace whose last deployment went while no operator
        ran: deleted now (a reconcile makes it again if a deployment comes)."""
        for binding in self.cache.values(w.CLUSTER_ROLE_BINDINGS):
            labels = binding["metadata"].get("labels") or {}
            namespace = labels.get(MD_NAMESPACE_LABEL)
            idle = namespace and not self.cache.indexed(w.MODEL_DEPLOYMENTS, namespace)
            if idle and MD_LABEL not in labels:
                self.reconciler.identity.release(str(namespace), self.view)

    def enqueue_tenants(self) -> None:
        for tenant in self.cache.values(w.TENANTS):
            self.tenants.add(tenant["metadata"]["name"])

    # -- what the caches hear ----------------------------------------------------------------

    def _heard(self, watched: w.Watched, kind: str, obj: Obj) -> None:
        if watched in EVERYONE:
            self.enqueue_all()
            return
        if watched == w.TENANTS:
            # A deleted one too: its reconcile finds it gone and drops its usage series.
            self.tenants.add(obj["metadata"]["name"])
            namespace = tenant_namespace(obj)
            if namespace:
                self.enqueue_all(namespace)
            return
        if watched == w.QUOTAS:
            tenant = ((obj.get("metadata") or {}).get("labels") or {}).get(TENANT_LABEL)
            if tenant and kind != "DELETED":
                self.tenants.add(tenant)
            return
        if watched == w.USAGE_REPORTS:
            for tenant in sorted(tenants_in(obj)):
                self.tenants.add(tenant)
            return
        if watched == self.key_secrets:
            return
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if MD_NAMESPACE_LABEL in labels and MD_LABEL not in labels:  # a namespace's identity
            self.enqueue_all(labels[MD_NAMESPACE_LABEL])
            return
        if watched == w.MODEL_DEPLOYMENTS and kind in ("ADDED", "DELETED"):
            meta = obj["metadata"]
            if kind == "DELETED":
                self._tombstones[(meta["namespace"], meta["name"])] = obj
            tenant = self.view.tenant_of(meta["namespace"])
            if tenant is not None:
                self.tenants.add(tenant["metadata"]["name"])
        for key in owners(watched, obj):
            self.queue.add(key)

    def _listed(self, watched: w.Watched) -> None:
        """A list (after a watch restart): anything may have changed meanwhile."""
        if self._verified:
            self.enqueue_all()
            self.enqueue_tenants()

    # -- workers -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get()
            except ShutDown:
                return
            if key is None:
                continue
            try:
                self._reconcile(key)
                self._failures.pop(key, None)
            except Exception:
                failures = self._failures.get(key, 0)
                self._failures[key] = failures + 1
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                log.exception("reconciling %s/%s failed; again in %.0f s", *key, delay)
                self.queue.add_after(key, delay)
            finally:
                self.queue.done(key)
                self._note_verified()

    def _look(self) -> None:
        while not self._stopping.wait(self.tenant_look_seconds):
            self.enqueue_tenants()

    def _tenant_work(self) -> None:
        while True:
            try:
                name = self.tenants.get()
            except ShutDown:
                return
            if name is None:
                continue
            try:
                self.reconcile_tenant(name)
            except Exception:
                log.exception("reconciling tenant %s failed; again in 5 s", name)
                self.tenants.add_after(name, 5.0)
            finally:
                self.tenants.done(name)

    def _reconcile(self, key: Key) -> None:
        namespace, name = key
        body = self.view.model_deployment(namespace, name)
        gone = self._tombstones.pop(key, None)
        if gone is not None and (
            body is None or body["metadata"]["uid"] != gone["metadata"]["uid"]
        ):
            self.reconciler.deleted(gone, self.view)
        if body is None:
            return
        if body["metadata"].get("deletionTimestamp"):
            return  # garbage collection takes the children
        self.reconciler.reconcile(body, self.view)

    def reconcile_with_loads(self, namespace: str, name: str, loads: Sequence[ReplicaLoad]) -> None:
        """Reconcile now, on the caller's thread, with the replicas' loads the autoscaler read
        (the deployment's lock keeps it from a worker's reconcile of the same deployment)."""
        body = self.view.model_deployment(namespace, name)
        if body is not None and not body["metadata"].get("deletionTimestamp"):
            self.reconciler.reconcile(body, self.view, loads)

    def _note_verified(self) -> None:
        if self._verified or not self.queue.idle():
            return
        self._verified = True
        count = len(self.cache.values(w.MODEL_DEPLOYMENTS))
        seconds = time.monotonic() - self._started
        metrics.STARTUP_VERIFIED_SECONDS.set(seconds)
        log.info("all %d ModelDeployments verified %.1f s after start", count, seconds)

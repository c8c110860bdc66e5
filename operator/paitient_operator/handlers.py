"""kopf wiring: the operator's life and the Tenants. Thin by design.

- kopf runs only in the replica that holds the operator's Lease (``main.py``, ``election/``):
  everything below, the controller's caches and workers included, runs in the leader alone.
- Start-up: the system objects, the chart's store's certificate (``managed_store.py``), then the
  ModelDeployment controller (``controller.py``: its caches, its queue, its workers), which
  reconciles every deployment once and then each one a change concerns (the deployment, a
  child, a pod, what it depends on); stopped at clean-up.
- When a serving certificate is due for renewal, the renewal worker queues its deployment
  (operator issuer; with cert-manager, a change of its Certificate does).
- The native autoscaler's pass (``autoscaling/worker.py``) reads the controller's caches and
  reconciles a deployment through it when its replicas' loads call for a change.
- The front door's certificate (``frontDoorCertificate``) is issued from the operator's CA
  before the controller starts, and kept by a thread of its own.
- Tenants are reconciled by the controller too; kopf holds a Tenant's deletion while it has
  ModelDeployments (its finalizer) and forgets a deleted one.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.resources import tenant as tn
from paitient_common.resources.shared import GROUP, plain
from paitient_operator.autoscaling.loads import GatewayAddresses, LoadReader
from paitient_operator.autoscaling.worker import AutoscalerWorker
from paitient_operator.bootstrap import ensure_system_objects
from paitient_operator.builders.metadata import MANAGED_BY
from paitient_operator.cache import watched
from paitient_operator.certificates.front_door import FrontDoorCertificate
from paitient_operator.certificates.renewals import RenewalWorker
from paitient_operator.cluster_view import keda_installed
from paitient_operator.config import OperatorConfig
from paitient_operator.controller import Controller
from paitient_operator.diffbase import InMemoryDiffBaseStorage
from paitient_operator.events import EventPoster
from paitient_operator.gateway_bindings import sweep_gateway_bindings
from paitient_operator.managed_store import ManagedStore
from paitient_operator.observed_metrics import OBSERVED
from paitient_operator.reconciler import Reconciler
from paitient_operator.tenant_reconciler import TenantReconciler

MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf would post every handler's success as an Event (a write per reconcile); we post
    # our own, only when something changes. Its log messages are not posted at all
    # (posting.loggers is off by default), so a refusal posts its own Warning.
    settings.posting.level = logging.WARNING
    # An Event is a courtesy: one retry, not eight, when its namespace is being deleted.
    settings.posting.default_backoffs = (2,)
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    # "The spec last handled" lives in memory: no bookkeeping patch per change, and no second
    # handling of an object when a lagging watch hands kopf a copy older than that patch.
    memo.diffbase = InMemoryDiffBaseStorage()
    settings.persistence.diffbase_storage = memo.diffbase
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 16
    config: OperatorConfig = memo.config  # loaded and checked before kopf started (main.py)
    kube = Kube.from_kubeconfig()
    ensure_system_objects(kube, config)
    swept = sweep_gateway_bindings(kube, config.system_namespace)
    if swept:
        logging.getLogger(__name__).info("deleted %d bindings of deleted ModelDeployments", swept)
    memo.events = EventPoster(kube)
    memo.tenants = TenantReconciler(kube, config, memo.events.post)
    reconciler = Reconciler(kube, config, memo.events.post)
    reconciler.certificates.prepare()
    if config.managed_store.tls_secret:
        memo.store = ManagedStore(kube, config, reconciler.certificates.authorities)
        try:
            memo.store.sync()
        except KubeError as exc:  # the pass every renewal check tries again
            logging.getLogger(__name__).error("keeping the store's certificate failed: %s", exc)
        memo.store.start(config.tls.renewal_check_seconds)
    # Before the front door pod can start (it mounts this Secret), and before the caches sync.
    memo.front_door_tls = FrontDoorCertificate(kube, config, reconciler.certificates.authorities)
    memo.front_door_tls.sync()
    memo.front_door_tls.start()
    OBSERVED.serving_renewal = reconciler.renewals.earliest
    by_cert_manager = config.tls.issuer == "cert-manager"
    memo.controller = Controller(
        reconciler,
        extra=(
            *((watched.CERTIFICATES,) if by_cert_manager else ()),
            *((watched.SCALED_OBJECTS,) if keda_installed(kube) else ()),
        ),
        reconcile_tenant=memo.tenants.reconcile_named,
    )
    memo.tenants.view = memo.controller.view
    memo.controller.start()
    memo.renewals = RenewalWorker(
        reconciler.renewals, memo.controller.enqueue, config.tls.renewal_check_seconds
    )
    memo.renewals.start()
    cache = memo.controller.cache
    memo.autoscaler = AutoscalerWorker(
        kube,
        lambda: cache.values(watched.MODEL_DEPLOYMENTS),
        memo.controller.view.pods,
        memo.controller.reconcile_with_loads,
        reconciler.last_status,
        config.system_namespace,
        config.autoscaling.interval_seconds,
        GatewayAddresses(config.autoscaling.gateway_addresses, config.gateway.port),
        LoadReader(config.autoscaling.scrape_timeout_seconds),
        keda_installed=reconciler.keda.installed,
    ).start()


@kopf.on.cleanup()
def stop_workers(memo: kopf.Memo, **_: Any) -> None:
    # absent when start-up failed before it (or no store)
    for part in ("autoscaler", "renewals", "controller", "store", "front_door_tls", "events"):
        worker = getattr(memo, part, None)
        if worker is not None:
            worker.stop()
    # kopf waits for its stop flag (main's threading.Event) in a thread of its loop's executor,
    # which the loop joins when it closes: a stop by signal must set it too, or that never ends.
    flag = getattr(memo, "stop_flag", None)
    if flag is not None:
        flag.set()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_kubeconfig(**kwargs) or kopf.login_with_service_account(**kwargs)


# -- Tenants -----------------------------------------------------------------------------------


@kopf.on.event(tn.GROUP, tn.VERSION, tn.PLURAL)
def tenant_gone(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") == "DELETED":
        memo.diffbase.forget(body["metadata"]["uid"])


@kopf.on.delete(tn.GROUP, tn.VERSION, tn.PLURAL)
def refuse_deleting_a_tenant_in_use(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """A tenant with ModelDeployments is not deleted unless annotated paitient.ai/force-delete;
    its namespace (and so its deployments) goes with it through owner references."""
    tenant = tn.parse_tenant(_plain(body))
    remaining = memo.tenants.deployments_of(tenant)
    if remaining and not tenant.force_delete:
        names = ", ".join(sorted(d["metadata"]["name"] for d in remaining)[:5])
        why = (
            f"tenant {tenant.name} still has {len(remaining)} ModelDeployments ({names}); "
            f"delete them first, or annotate {tn.FORCE_DELETE_ANNOTATION}=true to delete "
            "everything"
        )
        if retry == 0:  # once when the hold begins, not on every retry of a hold that lasts
            memo.events.post(_plain(body), "Warning", "DeletionHeld", why)
        raise kopf.TemporaryError(why, delay=15)


def _plain(body: kopf.Body) -> Obj:
    plain_body: Obj = plain(body)
    return plain_body

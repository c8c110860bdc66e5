"""kopf wiring: which events run the reconciler. Thin by design; the work is in reconciler.py.

- A ModelDeployment created, changed or found at start-up is reconciled.
- A change to one of its children (edited or deleted by hand, a Deployment's rollout progress)
  or to one of its pods (scheduled, unschedulable, ready) reconciles the owning ModelDeployment,
  which repairs drift and refreshes status.
- When its serving certificate is due for renewal, the renewal worker reconciles it (operator
  issuer; a thread started here, not a kopf timer, which would put a finalizer on every
  ModelDeployment); with cert-manager, a change of its Certificate does
  (``register_certificate_handlers``: the choice is configuration, registered by ``main``).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from paitient_common.kubeapi import Kube, Obj
from paitient_common.resources import tenant as tn
from paitient_common.resources import usagereport as ur
from paitient_common.resources.modeldeployment import GROUP, KIND, PLURAL, VERSION
from paitient_common.resources.shared import plain
from paitient_operator.bootstrap import ensure_system_objects
from paitient_operator.builders.gateway_rbac import GATEWAY_BINDING_LABEL, MD_NAMESPACE_LABEL
from paitient_operator.builders.metadata import MANAGED_BY, MD_LABEL
from paitient_operator.certificates.renewals import RenewalWorker
from paitient_operator.cluster_view import (
    API_SERVER_SLICE_LABEL,
    API_SERVER_SLICE_NAMESPACE,
    IndexView,
    hpa_target,
    slice_endpoints,
)
from paitient_operator.config import OperatorConfig, TLSConfig
from paitient_operator.diffbase import InMemoryDiffBaseStorage
from paitient_operator.gateway_bindings import sweep_gateway_bindings
from paitient_operator.reconciler import Reconciler
from paitient_operator.tenant_reconciler import TenantReconciler
from paitient_operator.usage import tenants_in

CHILDREN = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("", "v1", "serviceaccounts"),
    ("", "v1", "persistentvolumeclaims"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
)
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}
GATEWAY_BINDINGS = {GATEWAY_BINDING_LABEL: "true"}


def _post_event(body: Obj, type_: str, reason: str, message: str) -> None:
    # kopf only reads apiVersion, kind and metadata from the body: a plain dict serves.
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message[:1024])


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
    memo.reconciler = Reconciler(kube, config, _post_event)
    memo.reconciler.certificates.prepare()
    memo.renewals = RenewalWorker(
        memo.reconciler.renewals,
        memo.reconciler.reconcile_named,
        config.tls.renewal_check_seconds,
    )
    memo.renewals.start()
    memo.tenants = TenantReconciler(kube, config, _post_event)


@kopf.on.cleanup()
def stop_renewals(memo: kopf.Memo, **_: Any) -> None:
    worker = getattr(memo, "renewals", None)  # absent when start-up failed before it
    if worker is not None:
        worker.stop()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_kubeconfig(**kwargs) or kopf.login_with_service_account(**kwargs)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile_model_deployment(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    memo.reconciler.reconcile(_plain(body), _view(kwargs))


def _on_child_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    if event.get("type") is None:  # the initial listing: resume handlers cover it
        return
    for ref in body.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("kind") == KIND and ref.get("controller"):
            memo.reconciler.reconcile_named(
                body["metadata"]["namespace"], ref["name"], _view(kwargs)
            )


for _group, _version, _plural in CHILDREN:
    kopf.on.event(_group, _version, _plural, labels=MANAGED)(_on_child_event)


def _on_gateway_binding_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    """A gateway binding outside its deployment's namespace changed or went: reconcile the
    deployment it names (if it is gone, nothing happens)."""
    if event.get("type") is None:
        return
    labels = body["metadata"]["labels"]
    memo.reconciler.reconcile_named(labels[MD_NAMESPACE_LABEL], labels[MD_LABEL], _view(kwargs))


for _kind in ("rolebindings", "clusterrolebindings"):
    kopf.on.event("rbac.authorization.k8s.io", "v1", _kind, labels=GATEWAY_BINDINGS)(
        _on_gateway_binding_event
    )


def register_certificate_handlers(tls: TLSConfig) -> None:
    """The handlers the TLS configuration asks for; call before ``kopf.run``. With
    cert-manager the Certificate is a child: its Ready condition and times feed the status."""
    if tls.issuer == "cert-manager":
        kopf.on.event("cert-manager.io", "v1", "certificates", labels=MANAGED)(_on_child_event)


@kopf.on.event("", "v1", "pods", labels={MD_LABEL: kopf.PRESENT})
def pod_changed(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    if event.get("type") is None:
        return
    namespace, owner = body["metadata"]["namespace"], body["metadata"]["labels"][MD_LABEL]
    memo.reconciler.reconcile_named(namespace, owner, _view(kwargs))


# -- watch-fed indices: what reconciles read besides their children, without a request -------


@kopf.index("storage.k8s.io", "v1", "storageclasses")
def storage_class_index(body: kopf.Body, **_: Any) -> dict[None, Obj]:
    return {None: _plain(body)}


@kopf.index(tn.GROUP, tn.VERSION, tn.PLURAL)
def tenant_index(body: kopf.Body, **_: Any) -> dict[str, Obj] | None:
    namespace = (body.get("status") or {}).get("namespace")
    return {namespace: _plain(body)} if namespace else None


@kopf.index("autoscaling", "v2", "horizontalpodautoscalers")
def autoscaler_index(body: kopf.Body, **_: Any) -> dict[tuple[str, str], bool] | None:
    target = hpa_target(_plain(body))
    return {(body["metadata"]["namespace"], target): True} if target else None


@kopf.index(
    "discovery.k8s.io",
    "v1",
    "endpointslices",
    labels={API_SERVER_SLICE_LABEL: "kubernetes"},
    when=lambda namespace, **_: namespace == API_SERVER_SLICE_NAMESPACE,
)
def api_server_index(body: kopf.Body, **_: Any) -> dict[None, list[tuple[str, int]]]:
    return {None: slice_endpoints(_plain(body))}


@kopf.index("rbac.authorization.k8s.io", "v1", "rolebindings", labels=GATEWAY_BINDINGS)
def gateway_role_binding_index(body: kopf.Body, **_: Any) -> dict[str, Obj]:
    return {str(body["metadata"]["name"]): _plain(body)}


@kopf.index("rbac.authorization.k8s.io", "v1", "clusterrolebindings", labels=GATEWAY_BINDINGS)
def gateway_cluster_role_binding_index(body: kopf.Body, **_: Any) -> dict[str, Obj]:
    return {str(body["metadata"]["name"]): _plain(body)}


def _view(kwargs: dict[str, Any]) -> IndexView:
    endpoints = {None: [e for group in kwargs["api_server_index"].get(None, ()) for e in group]}
    return IndexView(
        kwargs["storage_class_index"],
        kwargs["tenant_index"],
        kwargs["autoscaler_index"],
        endpoints,
        {
            "RoleBinding": kwargs["gateway_role_binding_index"],
            "ClusterRoleBinding": kwargs["gateway_cluster_role_binding_index"],
        },
    )


# -- Tenants -----------------------------------------------------------------------------------


@kopf.on.resume(tn.GROUP, tn.VERSION, tn.PLURAL)
@kopf.on.create(tn.GROUP, tn.VERSION, tn.PLURAL)
@kopf.on.update(tn.GROUP, tn.VERSION, tn.PLURAL)
def reconcile_tenant(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.tenants.reconcile(_plain(body))


@kopf.timer(tn.GROUP, tn.VERSION, tn.PLURAL, interval=60, idle=30)
def roll_tenant_period(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A new billing period starts at a time, not on an event: look once a minute (no write
    unless the status changes)."""
    memo.tenants.reconcile_named(body["metadata"]["name"])


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
            _post_event(_plain(body), "Warning", "DeletionHeld", why)
        raise kopf.TemporaryError(why, delay=15)


@kopf.on.event(ur.GROUP, ur.VERSION, ur.PLURAL)
def usage_reported(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") is None:
        return
    for tenant in sorted(tenants_in(_plain(body))):
        memo.tenants.reconcile_named(tenant)


@kopf.on.event(GROUP, VERSION, PLURAL)
def model_deployment_deleted(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """Garbage collection takes the owned children; the operator removes the rest."""
    if event.get("type") == "DELETED":
        memo.diffbase.forget(body["metadata"]["uid"])
        memo.reconciler.deleted(_plain(body))


@kopf.on.event(GROUP, VERSION, PLURAL)
def deployment_count_changed(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    if event.get("type") not in ("ADDED", "DELETED"):
        return
    tenant = _view(kwargs).tenant_of(body["metadata"]["namespace"])
    if tenant is not None:
        memo.tenants.reconcile_named(tenant["metadata"]["name"])


@kopf.on.event("", "v1", "resourcequotas", labels={"paitient.ai/tenant": kopf.PRESENT, **MANAGED})
def quota_changed(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A tenant is Ready only once its quota is counted: look again when the quota changes."""
    if event.get("type") in ("ADDED", "MODIFIED"):
        memo.tenants.reconcile_named(body["metadata"]["labels"]["paitient.ai/tenant"])


def _plain(body: kopf.Body) -> Obj:
    plain_body: Obj = plain(body)
    return plain_body

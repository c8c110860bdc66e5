"""The ModelDeployment reconciler: a straight list of render-and-sync steps, then status.

Pure builders render the children; the serving certificate is kept or re-issued from what its
Secret holds (``certificates.issuer``); ``sync_child`` writes only what differs; the status is
computed from what the cluster shows and written only when it changed. A refusal (invalid spec,
unencrypted storage, tier rules) creates nothing and sets phase Failed with its reason: time will
not fix it, so it is not retried until the spec changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.resources.modeldeployment import (
    API_VERSION,
    KIND,
    ModelDeployment,
    parse_model_deployment,
)
from paitient_common.resources.shared import InvalidResource
from paitient_common.wake import wake_token_of
from paitient_operator import builders, metrics
from paitient_operator.autoscaling.decision import ReplicaLoad
from paitient_operator.autoscaling.plan import Autoscaler, ScalingPlan, plan_scaling
from paitient_operator.builders.autoscalers import (
    HPA_API_VERSION,
    KEDA_API_VERSION,
    SCALED_OBJECT,
)
from paitient_operator.builders.metadata import serving_secret_name
from paitient_operator.builders.store import store_secret_name
from paitient_operator.certificates.issuer import ServingIssuer
from paitient_operator.certificates.renewals import RenewalSchedule
from paitient_operator.certificates.serving import serving_secret_reference
from paitient_operator.children import adopt, sync_child
from paitient_operator.cluster_view import ApiView, ClusterView, KedaProbe
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import InvalidSpec, OperatorError, TierLimitExceeded, as_refusal
from paitient_operator.gateway_bindings import delete_gateway_bindings
from paitient_operator.namespace_identity import NamespaceIdentity
from paitient_operator.observed_metrics import OBSERVED
from paitient_operator.status import observed_status, refused_status, status_changes
from paitient_operator.storage_policy import resolve_storage_class
from paitient_operator.tier_rules import check_tier

log = logging.getLogger(__name__)
GONE_REMEMBERED = 10_000

# (type, reason, message) -> posted as a Kubernetes Event on the ModelDeployment.
EventSink = Callable[[Obj, str, str, str], None]


@dataclass
class Reconciler:
    """Brings one ModelDeployment's children and status in line with its spec."""

    kube: Kube
    config: OperatorConfig
    post_event: EventSink
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    # The last status written per object uid. The operator is the only writer of status, and
    # the bodies handed to it by watch events can be older than its own last write: comparing
    # with those would rewrite the same status again and again.
    _written: dict[str, Obj] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    # uids of deleted ModelDeployments (insertion-ordered, oldest dropped first).
    _gone: dict[str, None] = field(default_factory=dict)
    certificates: ServingIssuer = field(init=False)
    # Whether KEDA's CRDs are served (engine keda), asked at most once a minute.
    keda: KedaProbe = field(init=False)
    identity: NamespaceIdentity = field(init=False)
    # When each serving certificate is due (operator issuer), for the renewal worker.
    renewals: RenewalSchedule = field(default_factory=RenewalSchedule)

    def __post_init__(self) -> None:
        self.certificates = ServingIssuer(self.kube, self.config)
        self.keda = KedaProbe(self.kube)
        self.identity = NamespaceIdentity(self.kube, self.config.system_namespace)

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def deleted(self, body: Obj, view: ClusterView | None = None) -> None:
        """A ModelDeployment is gone: drop what is kept about it, delete the bindings an earlier
        operator made for it outside the namespace, and the namespace's gateway identity if it
        was the last. Under its lock, after any reconcile in flight, and remembered, so a
        reconcile holding an older copy cannot put them back."""
        meta = body["metadata"]
        with self._lock(meta["namespace"], meta["name"]):
            self._gone[meta["uid"]] = None
            while len(self._gone) > GONE_REMEMBERED:
                self._gone.pop(next(iter(self._gone)))
            self._written.pop(meta["uid"], None)
            self.renewals.forget(meta["namespace"], meta["name"])
            OBSERVED.model_gone(meta["namespace"], meta["name"])
            delete_gateway_bindings(
                self.kube,
                self.config.system_namespace,
                meta["namespace"],
                meta["name"],
                meta["uid"],
            )
            reads = view or ApiView(self.kube, self.keda)
            self.identity.release(meta["namespace"], reads)
            for secret in _remembered_secrets(body):
                reads.forget(secret)
        with self._locks_guard:
            self._locks.pop((meta["namespace"], meta["name"]), None)

    def reconcile_named(self, namespace: str, name: str, view: ClusterView | None = None) -> None:
        """Reconcile by name (a child changed); nothing to do if the owner is gone."""
        body = (view or ApiView(self.kube, self.keda)).model_deployment(namespace, name)
        if body is None:
            return
        if body["metadata"].get("deletionTimestamp"):
            self._written.pop(body["metadata"]["uid"], None)
            return
        self.reconcile(body, view)

    def last_status(self, body: Obj) -> Obj:
        """The status this operator last wrote for ``body`` (else the one it carries)."""
        return dict(self._written.get(body["metadata"]["uid"]) or body.get("status") or {})

    def reconcile(
        self,
        body: Obj,
        view: ClusterView | None = None,
        loads: Sequence[ReplicaLoad] | None = None,
    ) -> Obj:
        """Run every step for ``body``; return the status it ends with. ``view`` answers the
        reads beyond the children (the API itself when not given); ``loads``, the replicas'
        loads the autoscaler read (None: no decision on load, only bounds and wake)."""
        with metrics.RECONCILE_SECONDS.labels(KIND).time():
            try:
                status = self._reconcile(body, view or ApiView(self.kube, self.keda), loads)
            except Exception:
                metrics.RECONCILES.labels(KIND, "error").inc()
                raise
        result = "refused" if status.get("phase") == "Failed" else "ok"
        metrics.RECONCILES.labels(KIND, result).inc()
        meta = body["metadata"]
        if meta["uid"] not in self._gone:
            OBSERVED.model(meta["namespace"], meta["name"], status)
        return status

    def _reconcile(self, body: Obj, view: ClusterView, loads: Sequence[ReplicaLoad] | None) -> Obj:
        meta = body["metadata"]
        with self._lock(meta["namespace"], meta["name"]):
            previous = self._written.get(meta["uid"]) or body.get("status") or {}
            if meta["uid"] in self._gone:  # an older copy, handled after the deletion
                return dict(previous)
            try:
                md = parse_model_deployment(body)
                scaling = self._plan_scaling(md, body, previous, view, loads)
                children = self._render(md, body, view, scaling)
                # The autoscaler's decision is kept before the Deployment follows it: an
                # operator stopped in between finds it in the status and carries it out.
                previous = self._keep_decision(body, previous, scaling, view)
            except (InvalidResource, OperatorError) as error:
                return self._refuse(body, previous, as_refusal(error), view)
            outcomes: dict[str, str] = {}
            live: dict[str, Obj] = {}
            try:
                # First: the pod cannot start without the Secret it mounts.
                cached_secret = view.live(serving_secret_reference(md))
                certificate, certificate_live = self.certificates.desired(md, body, cached_secret)
                if cached_secret is False and certificate_live:  # read from the API just now
                    view.fetched(certificate_live)
            except KubeError as exc:
                if _going_away(exc):
                    return previous
                raise
            # The namespace's gateway identity (written by its first deployment only).
            outcomes.update(self.identity.ensure(md.namespace, view))
            for child in [certificate, *children]:
                elsewhere = child["metadata"].get("namespace") != md.namespace
                cached = certificate_live if child is certificate else view.live(child)
                try:
                    outcome, obj = sync_child(self.kube, child, cached)
                except KubeError as exc:
                    if _going_away(exc):
                        return previous  # namespace or owner being deleted: nothing to keep
                    if exc.status == 422:  # the API server refuses the change (immutable field)
                        immutable = InvalidSpec(
                            f"{child['kind']} {child['metadata']['name']} cannot take this "
                            f"change: {exc.message}"
                        )
                        return self._refuse(body, previous, immutable, view)
                    raise
                outcomes[_describe(child, md.namespace)] = outcome
                if outcome != "unchanged":
                    metrics.CHILD_WRITES.labels(child["kind"], outcome).inc()
                    view.written(obj)
                if not elsewhere:
                    live[child["kind"]] = obj
            self._announce(body, outcomes)
            self._scaling_done(md, body, previous, view, scaling)
            self.identity.remove_legacy(md.namespace, md.name, meta["uid"], view)
            pods = view.pods(md.namespace, md.name)
            served = self.certificates.state(md, live.get(certificate["kind"]))
            if self.certificates.by_operator:  # cert-manager renews its own
                self.renewals.record(md.namespace, md.name, served.renew_after)
            new = observed_status(
                md, live.get("Deployment"), pods, previous, self.config, _now(), served,
                scaling.condition, scaling.status,
            )  # fmt: skip
            self._write_status(body, previous, new, None, view)
            return new

    def _refuse(self, body: Obj, previous: Obj, refusal: OperatorError, view: ClusterView) -> Obj:
        """Phase Failed with the refusal's reason; nothing created (or changed)."""
        new = refused_status(refusal, body["metadata"].get("generation"), previous, _now())
        self._write_status(body, previous, new, refusal, view)
        return new

    def _plan_scaling(
        self,
        md: ModelDeployment,
        body: Obj,
        previous: Obj,
        view: ClusterView,
        loads: Sequence[ReplicaLoad] | None,
    ) -> ScalingPlan:
        uid = body["metadata"]["uid"]
        autoscalers = [
            Autoscaler.from_entry(e, uid) for e in view.autoscalers(md.namespace, md.name)
        ]
        keda = md.spec.autoscaling is not None and md.spec.autoscaling.engine == "keda"
        return plan_scaling(
            md,
            previous,
            autoscalers,
            _now(),
            loads=loads,
            wake_token=wake_token_of(body),
            keda_installed=keda and self.keda.installed(),
        )

    def _render(
        self, md: ModelDeployment, body: Obj, view: ClusterView, scaling: ScalingPlan
    ) -> list[Obj]:
        """Every child (owned ones adopted); raises OperatorError for what cannot be served."""
        self._check_tier(md, body, view)
        classes = view.storage_classes()
        storage_class = resolve_storage_class(
            md.spec.storage.storage_class_name, classes, self.config
        )
        return [
            *[adopt(secret, body) for secret in self._store_secret(md)],
            adopt(builders.build_pvc(md, self.config, storage_class), body),
            adopt(builders.build_service(md, self.config), body),
            adopt(
                builders.build_network_policy(
                    md, self.config, api_server_endpoints=view.api_server_endpoints()
                ),
                body,
            ),
            # Replicas: the spec's, the native autoscaler's, or none (an HPA or KEDA's own).
            adopt(builders.build_deployment(md, self.config, replicas=scaling.replicas), body),
            *[adopt(scaler, body) for scaler in self._autoscaler_objects(md, scaling)],
        ]

    def _scaling_done(
        self, md: ModelDeployment, body: Obj, previous: Obj, view: ClusterView, plan: ScalingPlan
    ) -> None:
        """After the children: the autoscaler's Events, and an autoscaler object of an engine
        no longer chosen removed."""
        self._announce_scaling(body, previous, plan)
        self._remove_stale_autoscalers(md, body, view, plan)

    def _keep_decision(
        self, body: Obj, previous: Obj, scaling: ScalingPlan, view: ClusterView
    ) -> Obj:
        """Write ``status.autoscaling`` now when a native decision changed the replicas; the
        status the reconcile started from, with it."""
        decision = scaling.decision
        if decision is None or not decision.changed or scaling.status is None:
            return previous
        kept = {**previous, "autoscaling": scaling.status}
        self._write_status(body, previous, kept, None, view)
        return kept

    def _autoscaler_objects(self, md: ModelDeployment, scaling: ScalingPlan) -> list[Obj]:
        if scaling.render == "hpa":
            return [builders.build_hpa(md)]
        if scaling.render == "keda":
            return [builders.build_scaled_object(md, self.config)]
        return []

    def _remove_stale_autoscalers(
        self, md: ModelDeployment, body: Obj, view: ClusterView, scaling: ScalingPlan
    ) -> None:
        """An HPA or ScaledObject this operator rendered for an engine no longer chosen."""
        kept = {"hpa": "HorizontalPodAutoscaler", "keda": SCALED_OBJECT}.get(scaling.render or "")
        uid = body["metadata"]["uid"]
        for entry in view.autoscalers(md.namespace, md.name):
            scaler = Autoscaler.from_entry(entry, uid)
            if scaler.owned and scaler.kind != kept:
                api_version = HPA_API_VERSION if scaler.kind != SCALED_OBJECT else KEDA_API_VERSION
                # (until the watch says so, the cache may still show one already deleted)
                if self.kube.delete(api_version, scaler.kind, scaler.name, namespace=md.namespace):
                    self.post_event(body, "Normal", "Deleted", f"Deleted {scaler}: engine changed")

    def _announce_scaling(self, body: Obj, previous: Obj, scaling: ScalingPlan) -> None:
        """An Event for each change of replicas the native autoscaler makes, and once when it
        yields to another autoscaler."""
        decision = scaling.decision
        if decision is not None and decision.changed:
            if decision.replicas == 0:
                reason = "ScaledToZero"
            elif decision.previous == 0:
                reason = "ScaledFromZero"
            else:
                reason = "ScaledUp" if decision.replicas > decision.previous else "ScaledDown"
            self.post_event(body, "Normal", reason, decision.message)
        before = (previous.get("autoscaling") or {}).get("yieldedTo")
        if scaling.yielded_to and scaling.status is not None and before is None:
            message = scaling.condition[2] if scaling.condition else ""
            self.post_event(body, "Warning", "AutoscalerYielded", message)

    def _store_secret(self, md: ModelDeployment) -> list[Obj]:
        """The gateway's copy of the store's password and CA (none without a store)."""
        store = self.config.store
        secret = builders.build_store_secret(md, store, store.ca_pem())
        return [secret] if secret is not None else []

    def _check_tier(self, md: ModelDeployment, body: Obj, view: ClusterView) -> None:
        """Tier rules, when the namespace belongs to a Tenant (other namespaces have none)."""
        tenant = view.tenant_of(md.namespace)
        if tenant is None:
            return
        tier_name = str(tenant.get("spec", {}).get("tier", ""))
        tier = self.config.tiers.get(tier_name)
        if tier is None:
            raise TierLimitExceeded(f"the tenant's tier {tier_name!r} is not defined")
        others = view.model_deployments(md.namespace)
        created = str(body["metadata"].get("creationTimestamp", ""))
        check_tier(md, tier_name, tier, others, created)

    def _announce(self, body: Obj, outcomes: dict[str, str]) -> None:
        created = sorted(k for k, v in outcomes.items() if v == "created")
        updated = sorted(k for k, v in outcomes.items() if v == "updated")
        if created:
            self.post_event(body, "Normal", "Created", f"Created {', '.join(created)}")
        if updated:
            self.post_event(
                body, "Normal", "Updated", f"Updated {', '.join(updated)} to match the spec"
            )

    def _write_status(
        self,
        body: Obj,
        previous: Obj,
        new: Obj,
        refusal: OperatorError | None,
        view: ClusterView,
    ) -> None:
        changes = status_changes(previous, new)
        meta = body["metadata"]
        if changes is None:
            return
        self._written[meta["uid"]] = new
        log.info(
            "status of %s/%s: phase %s (changed: %s)",
            meta["namespace"], meta["name"], new.get("phase"), ", ".join(sorted(changes)),
        )  # fmt: skip
        metrics.STATUS_WRITES.labels(KIND).inc()
        try:
            patched = self.kube.patch(
                API_VERSION,
                KIND,
                meta["name"],
                {"status": changes},
                namespace=meta["namespace"],
                subresource="status",
            )
        except KubeError as exc:
            if _going_away(exc):
                return
            raise
        view.written(patched)
        if previous.get("phase") != new.get("phase"):
            kind = (
                "Warning"
                if refusal is not None or new.get("phase") in ("Failed", "Degraded")
                else "Normal"
            )
            reason = refusal.reason if refusal is not None else str(new.get("phase"))
            self.post_event(body, kind, reason, str(new.get("message") or ""))


def _describe(child: Obj, namespace: str) -> str:
    """``Service`` for a child in the deployment's namespace, ``RoleBinding paitient-system/x``
    or ``ClusterRoleBinding x`` for the ones elsewhere."""
    meta = child["metadata"]
    if meta.get("namespace") == namespace:
        return str(child["kind"])
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{child['kind']} {where}{meta['name']}"


def _remembered_secrets(body: Obj) -> list[Obj]:
    """The deployment's Secrets a view may remember (no cache watches Secrets), to forget once it
    is gone; none for a body that never parsed (nothing was made for it)."""
    try:
        md = parse_model_deployment(body)
    except InvalidResource:
        return []
    names = [serving_secret_name(md), store_secret_name(md)]
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n, "namespace": md.namespace}}
        for n in names
    ]


def _going_away(exc: KubeError) -> bool:
    """The owner was deleted, or its namespace is terminating: reconciling is moot."""
    return exc.status == 404 or (exc.status == 403 and "being terminated" in exc.message)


def _now() -> datetime:
    return datetime.now(UTC)

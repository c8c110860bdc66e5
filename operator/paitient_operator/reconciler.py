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
from collections.abc import Callable
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
from paitient_operator import builders, metrics
from paitient_operator.builders.gateway_rbac import cross_namespace_binding_name
from paitient_operator.builders.metadata import selector_string
from paitient_operator.certificates.issuer import ServingIssuer
from paitient_operator.certificates.renewals import RenewalSchedule
from paitient_operator.children import adopt, sync_child
from paitient_operator.cluster_view import ApiView, ClusterView
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import InvalidSpec, OperatorError, TierLimitExceeded, as_refusal
from paitient_operator.gateway_bindings import delete_gateway_bindings
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
    # (kind, name) of the gateway bindings outside a namespace known to exist.
    _bindings_made: set[tuple[str, str]] = field(default_factory=set)
    certificates: ServingIssuer = field(init=False)
    # When each serving certificate is due (operator issuer), for the renewal worker.
    renewals: RenewalSchedule = field(default_factory=RenewalSchedule)

    def __post_init__(self) -> None:
        self.certificates = ServingIssuer(self.kube, self.config)

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def deleted(self, body: Obj) -> None:
        """A ModelDeployment is gone: delete its bindings outside the namespace (nothing else
        collects them) and drop what is kept about it. Under its lock, after any reconcile in
        flight, and remembered, so a reconcile holding an older copy cannot put them back."""
        meta = body["metadata"]
        with self._lock(meta["namespace"], meta["name"]):
            self._gone[meta["uid"]] = None
            while len(self._gone) > GONE_REMEMBERED:
                self._gone.pop(next(iter(self._gone)))
            self._written.pop(meta["uid"], None)
            self.renewals.forget(meta["namespace"], meta["name"])
            OBSERVED.model_gone(meta["namespace"], meta["name"])
            name = cross_namespace_binding_name(meta["namespace"], meta["name"])
            self._bindings_made.difference_update(
                {("RoleBinding", name), ("ClusterRoleBinding", name)}
            )
            delete_gateway_bindings(
                self.kube,
                self.config.system_namespace,
                meta["namespace"],
                meta["name"],
                meta["uid"],
            )
        with self._locks_guard:
            self._locks.pop((meta["namespace"], meta["name"]), None)

    def reconcile_named(self, namespace: str, name: str, view: ClusterView | None = None) -> None:
        """Reconcile by name (a child changed); nothing to do if the owner is gone."""
        body = self.kube.get(API_VERSION, KIND, name, namespace=namespace)
        if body is None:
            return
        if body["metadata"].get("deletionTimestamp"):
            self._written.pop(body["metadata"]["uid"], None)
            return
        self.reconcile(body, view)

    def reconcile(self, body: Obj, view: ClusterView | None = None) -> Obj:
        """Run every step for ``body``; return the status it ends with. ``view`` answers the
        reads beyond the children (the API itself when not given)."""
        with metrics.RECONCILE_SECONDS.labels(KIND).time():
            try:
                status = self._reconcile(body, view or ApiView(self.kube))
            except Exception:
                metrics.RECONCILES.labels(KIND, "error").inc()
                raise
        result = "refused" if status.get("phase") == "Failed" else "ok"
        metrics.RECONCILES.labels(KIND, result).inc()
        meta = body["metadata"]
        if meta["uid"] not in self._gone:
            OBSERVED.model(meta["namespace"], meta["name"], status)
        return status

    def _reconcile(self, body: Obj, view: ClusterView) -> Obj:
        meta = body["metadata"]
        with self._lock(meta["namespace"], meta["name"]):
            previous = self._written.get(meta["uid"]) or body.get("status") or {}
            if meta["uid"] in self._gone:  # an older copy, handled after the deletion
                return dict(previous)
            try:
                md = parse_model_deployment(body)
                children = self._render(md, body, view)
            except (InvalidResource, OperatorError) as error:
                refusal = as_refusal(error)
                new = refused_status(refusal, meta.get("generation"), previous, _now())
                self._write_status(body, previous, new, refusal)
                return new
            outcomes: dict[str, str] = {}
            live: dict[str, Obj] = {}
            try:
                # First: the pod cannot start without the Secret it mounts.
                certificate, certificate_live = self.certificates.desired(md, body)
            except KubeError as exc:
                if _going_away(exc):
                    return previous
                raise
            for child in [certificate, *children]:
                elsewhere = child["metadata"].get("namespace") != md.namespace
                binding = (child["kind"], child["metadata"]["name"])
                cached = view.gateway_binding(*binding) if elsewhere else False
                if cached is None and binding in self._bindings_made:
                    cached = False  # the index lags behind this operator's own create: ask
                if child is certificate:
                    cached = certificate_live
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
                        new = refused_status(immutable, meta.get("generation"), previous, _now())
                        self._write_status(body, previous, new, immutable)
                        return new
                    raise
                outcomes[_describe(child, md.namespace)] = outcome
                if outcome != "unchanged":
                    metrics.CHILD_WRITES.labels(child["kind"], outcome).inc()
                if elsewhere:
                    self._bindings_made.add(binding)
                else:
                    live[child["kind"]] = obj
            self._announce(body, outcomes)
            pods = self.kube.list(
                "v1", "Pod", namespace=md.namespace, label_selector=selector_string(md)
            )
            served = self.certificates.state(md, live.get(certificate["kind"]))
            if self.certificates.by_operator:  # cert-manager renews its own
                self.renewals.record(md.namespace, md.name, served.renew_after)
            new = observed_status(
                md, live.get("Deployment"), pods, previous, self.config, _now(), served
            )
            self._write_status(body, previous, new, None)
            return new

    def _render(self, md: ModelDeployment, body: Obj, view: ClusterView) -> list[Obj]:
        """Every child (owned ones adopted); raises OperatorError for what cannot be served."""
        self._check_tier(md, body, view.tenant_of(md.namespace))
        classes = view.storage_classes()
        storage_class = resolve_storage_class(
            md.spec.storage.storage_class_name, classes, self.config
        )
        uid = body["metadata"]["uid"]
        return [
            adopt(builders.build_service_account(md), body),
            adopt(builders.build_gateway_role_binding(md), body),
            # Bindings outside the namespace cannot be owned by the ModelDeployment: they are
            # labelled with its uid instead, and deleted by the operator when it goes.
            *builders.build_gateway_cross_namespace_bindings(md, uid, self.config.system_namespace),
            *[adopt(secret, body) for secret in self._store_secret(md)],
            adopt(builders.build_pvc(md, self.config, storage_class), body),
            adopt(builders.build_service(md, self.config), body),
            adopt(
                builders.build_network_policy(
                    md, self.config, api_server_endpoints=view.api_server_endpoints()
                ),
                body,
            ),
            # An autoscaler on the Deployment owns replicas; one on the ModelDeployment's scale
            # subresource changes spec.replicas, which flows through.
            adopt(
                builders.build_deployment(
                    md, self.config, include_replicas=not view.autoscaled(md.namespace, md.name)
                ),
                body,
            ),
        ]

    def _store_secret(self, md: ModelDeployment) -> list[Obj]:
        """The gateway's copy of the store's password and CA (none without a store)."""
        store = self.config.store
        secret = builders.build_store_secret(md, store, store.ca_pem())
        return [secret] if secret is not None else []

    def _check_tier(self, md: ModelDeployment, body: Obj, tenant: Obj | None) -> None:
        """Tier rules, when the namespace belongs to a Tenant (other namespaces have none)."""
        if tenant is None:
            return
        tier_name = str(tenant.get("spec", {}).get("tier", ""))
        tier = self.config.tiers.get(tier_name)
        if tier is None:
            raise TierLimitExceeded(f"the tenant's tier {tier_name!r} is not defined")
        others = self.kube.list(API_VERSION, KIND, namespace=md.namespace)
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
        self, body: Obj, previous: Obj, new: Obj, refusal: OperatorError | None
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
            self.kube.patch(
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


def _going_away(exc: KubeError) -> bool:
    """The owner was deleted, or its namespace is terminating: reconciling is moot."""
    return exc.status == 404 or (exc.status == 403 and "being terminated" in exc.message)


def _now() -> datetime:
    return datetime.now(UTC)

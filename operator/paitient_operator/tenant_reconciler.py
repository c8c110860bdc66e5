"""The Tenant reconciler: namespace, default-deny policy, quota, key Secret, then status.

Status carries the subscription the API reports: tier, usage limit, usage in the current period
(summed from UsageReports), period bounds, past periods, and the number of ModelDeployments.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.resources import modeldeployment as md_res
from paitient_common.resources import usagereport as ur_res
from paitient_common.resources.shared import InvalidResource
from paitient_common.resources.tenant import API_VERSION, KIND, Tenant, parse_tenant
from paitient_common.tiers import Tier, format_time, period_bounds
from paitient_operator import conditions as c
from paitient_operator import metrics
from paitient_operator.builders import tenant as build
from paitient_operator.children import adopt, sync_child
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import InvalidSpec, OperatorError, as_refusal
from paitient_operator.observed_metrics import OBSERVED
from paitient_operator.status import status_changes
from paitient_operator.usage import Totals, usage_by_period

log = logging.getLogger(__name__)
HISTORY_PERIODS = 12
EventSink = Callable[[Obj, str, str, str], None]


class TenantRefused(InvalidSpec):
    """The Tenant cannot be served as written (unknown tier, duplicate client ID)."""


@dataclass
class TenantReconciler:
    kube: Kube
    config: OperatorConfig
    post_event: EventSink
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _written: dict[str, Obj] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reconcile_named(self, name: str) -> None:
        body = self.kube.get(API_VERSION, KIND, name)
        if body is not None and not body["metadata"].get("deletionTimestamp"):
            self.reconcile(body)

    def reconcile(self, body: Obj) -> Obj:
        with metrics.RECONCILE_SECONDS.labels(KIND).time(), self._lock:
            meta = body["metadata"]
            previous = self._written.get(meta["uid"]) or body.get("status") or {}
            try:
                tenant = parse_tenant(body)
                tier = self._tier(tenant)
                self._check_unique_client_id(tenant)
            except (InvalidResource, OperatorError) as error:
                new = _refused(as_refusal(error), meta.get("generation"), previous, self.clock())
                self._write_status(body, previous, new)
                metrics.RECONCILES.labels(KIND, "refused").inc()
                OBSERVED.tenant(meta["name"], new)
                return new
            live: dict[str, Obj] = {}
            for child in self._render(tenant, tier):
                outcome, obj = sync_child(self.kube, adopt(child, body))
                live[child["kind"]] = obj
                if outcome != "unchanged":
                    metrics.CHILD_WRITES.labels(child["kind"], outcome).inc()
            counted = quota_counted(live.get("ResourceQuota"))
            new = self._observe(tenant, tier, previous, meta.get("generation"), counted)
            self._write_status(body, previous, new)
            metrics.RECONCILES.labels(KIND, "ok").inc()
            OBSERVED.tenant(meta["name"], new)
            return new

    def deployments_of(self, tenant: Tenant) -> list[Obj]:
        return self.kube.list(md_res.API_VERSION, md_res.KIND, namespace=tenant.namespace)

    # -- steps -------------------------------------------------------------------------------

    def _tier(self, tenant: Tenant) -> Tier:
        tier = self.config.tiers.get(tenant.spec.tier)
        if tier is None:
            known = ", ".join(sorted(self.config.tiers))
            raise TenantRefused(f"unknown tier {tenant.spec.tier!r}; known tiers: {known}")
        return tier

    def _check_unique_client_id(self, tenant: Tenant) -> None:
        for other in self.kube.list(API_VERSION, KIND):
            if other["metadata"]["name"] == tenant.name:
                continue
            if other.get("spec", {}).get("clientId") != tenant.spec.client_id:
                continue
            # The older tenant keeps the client ID; the newer one is refused.
            mine = (tenant.metadata.model_extra or {}).get("creationTimestamp", "")
            theirs = other["metadata"].get("creationTimestamp", "")
            if (theirs, other["metadata"]["name"]) < (mine, tenant.name):
                raise TenantRefused(
                    f"clientId {tenant.spec.client_id!r} is already used by tenant "
                    f"{other['metadata']['name']!r}"
                )

    def _render(self, tenant: Tenant, tier: Tier) -> list[Obj]:
        return [
            build.build_namespace(tenant),
            build.build_default_deny(tenant),
            build.build_quota(tenant, tier),
            build.build_keys_secret(tenant, self.config.system_namespace),
        ]

    def _observe(
        self, tenant: Tenant, tier: Tier, previous: Obj, generation: int | None, counted: bool
    ) -> Obj:
        now = self.clock()
        start, end = period_bounds(now, tier.period)
        reports = self.kube.list(ur_res.API_VERSION, ur_res.KIND)
        by_period = usage_by_period(reports, tenant.name)
        current = by_period.get(format_time(start), Totals())
        history = [
            {
                "periodStart": s,
                "periodEnd": format_time(period_bounds(_parse(s), tier.period)[1]),
                "promptTokens": t.prompt_tokens,
                "completionTokens": t.completion_tokens,
                "requests": t.requests,
            }
            for s, t in sorted(by_period.items(), reverse=True)
            if s < format_time(start)
        ][:HISTORY_PERIODS]
        deployments = len(self.deployments_of(tenant))
        limit = tenant.spec.usage_limit_override
        limit = tier.token_limit if limit is None else limit
        state = "suspended" if tenant.spec.suspended else "active"
        message = f"{state}; {current.tokens}/{limit} tokens this period; {deployments} deployments"
        if counted:
            conds = c.set_condition(
                previous.get("conditions"),
                c.TYPE_READY,
                True,
                c.REASON_READY,
                message,
                generation,
                now,
            )
        else:
            # Until the quota controller has counted the new quota, the API server refuses
            # every ModelDeployment in the namespace ("status unknown for quota").
            waiting = "waiting for the quota controller to count the tier's ResourceQuota"
            conds = c.set_condition(
                previous.get("conditions"),
                c.TYPE_READY,
                False,
                c.REASON_PROGRESSING,
                waiting,
                generation,
                now,
            )
        return {
            "tier": tenant.spec.tier,
            "namespace": tenant.namespace,
            "usageLimit": limit,
            "currentUsage": current.tokens,
            "promptTokens": current.prompt_tokens,
            "completionTokens": current.completion_tokens,
            "requests": current.requests,
            "periodStart": format_time(start),
            "periodEnd": format_time(end),
            "deployments": deployments,
            "suspended": tenant.spec.suspended,
            "history": history,
            "conditions": conds,
            "observedGeneration": generation,
            "message": message,
        }

    def _write_status(self, body: Obj, previous: Obj, new: Obj) -> None:
        changes = status_changes(previous, new)
        if changes is None:
            return
        meta = body["metadata"]
        self._written[meta["uid"]] = new
        metrics.STATUS_WRITES.labels(KIND).inc()
        try:
            self.kube.patch(
                API_VERSION, KIND, meta["name"], {"status": changes}, subresource="status"
            )
        except KubeError as exc:
            if exc.status == 404:
                return
            raise
        if previous.get("message") != new.get("message") and new.get("conditions"):
            ready = c.get_condition(new["conditions"], c.TYPE_READY) or {}
            if ready.get("status") == "False":
                self.post_event(body, "Warning", str(ready.get("reason")), str(new.get("message")))


def quota_counted(quota: Obj | None) -> bool:
    """True once the quota controller has counted ``quota``: its status mirrors the spec's
    limits and has a usage for each (a resource it has not discovered yet has none)."""
    if not quota:
        return False
    hard = (quota.get("spec") or {}).get("hard") or {}
    status = quota.get("status") or {}
    return bool(status.get("hard") == hard and set(hard) <= set(status.get("used") or {}))


def _refused(refusal: OperatorError, generation: int | None, previous: Obj, now: datetime) -> Obj:
    conds = c.set_condition(
        previous.get("conditions"),
        c.TYPE_READY,
        False,
        refusal.reason,
        refusal.message,
        generation,
        now,
    )
    return {"conditions": conds, "observedGeneration": generation, "message": refusal.message}


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

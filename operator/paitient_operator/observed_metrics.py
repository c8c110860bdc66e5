"""Prometheus series of what the operator last saw, computed at scrape time (the alerts' inputs).

- ``paitient_operator_model_deployments{phase}``: ModelDeployments by status phase;
- ``paitient_operator_model_deployment_not_ready_seconds{phase}``: how long the deployment that
  has been not Ready the longest has been so, by phase (scaled-to-zero ones left out: that is on
  purpose). One series per phase, never one per deployment: ``kubectl get md -A`` names them;
- ``paitient_operator_tenant_usage_tokens{tenant}``, ``paitient_operator_tenant_usage_limit_tokens
  {tenant}``: tokens used in the current period and the limit, as in each Tenant's status. One
  series per Tenant (an object administrators create, so the count stays small);
- ``paitient_operator_certificate_renewal_timestamp_seconds{certificate}``: when the certificate
  the operator keeps is due for renewal: its CA (``ca``), the front door's (``front-door``), and
  the earliest of the model gateways' (``serving``). Past due means renewing it keeps failing.

Only the replica that reconciles has anything to say; the others export zeros and no times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paitient_operator import conditions as c
from paitient_operator.metrics import LEADING

PHASES: Final = (
    c.PHASE_PENDING,
    c.PHASE_PROGRESSING,
    c.PHASE_READY,
    c.PHASE_DEGRADED,
    c.PHASE_FAILED,
    c.PHASE_SCALED_TO_ZERO,
)
CERTIFICATES: Final = ("ca", "front-door", "serving")


@dataclass(frozen=True)
class ModelState:
    """A deployment's phase and since when it has not been Ready (None: Ready, or at zero)."""

    phase: str
    not_ready_since: datetime | None


def model_state(status: Mapping[str, Any]) -> ModelState:
    """What the metrics keep of a status the operator computed (pure)."""
    phase = str(status.get("phase") or c.PHASE_PENDING)
    ready = c.get_condition(status.get("conditions"), c.TYPE_READY) or {}
    since: datetime | None = None
    if ready.get("status") != "True" and ready.get("reason") != c.REASON_SCALED_TO_ZERO:
        since = _parse(ready.get("lastTransitionTime"))
    return ModelState(phase, since)


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class ObservedState:
    """Fed by the reconcilers as they write status; read by ``ObservedCollector``. Thread-safe."""

    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    models: dict[tuple[str, str], ModelState] = field(default_factory=dict)
    usage: dict[str, tuple[int, int]] = field(default_factory=dict)
    renewals: dict[str, datetime] = field(default_factory=dict)
    # The earliest renewal among the gateways' serving certificates (the renewal schedule's).
    serving_renewal: Callable[[], datetime | None] = lambda: None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def model(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        with self._lock:
            self.models[(namespace, name)] = model_state(status)

    def model_gone(self, namespace: str, name: str) -> None:
        with self._lock:
            self.models.pop((namespace, name), None)

    def tenant(self, name: str, status: Mapping[str, Any]) -> None:
        """The tenant's usage and limit, when its status has them (a refused one has none)."""
        with self._lock:
            if "usageLimit" in status and "currentUsage" in status:
                self.usage[name] = (int(status["currentUsage"]), int(status["usageLimit"]))
            else:
                self.usage.pop(name, None)

    def tenant_gone(self, name: str) -> None:
        with self._lock:
            self.usage.pop(name, None)

    def certificate(self, which: str, renew_after: datetime) -> None:
        with self._lock:
            self.renewals[which] = renew_after

    def snapshot(
        self,
    ) -> tuple[list[ModelState], dict[str, tuple[int, int]], dict[str, datetime]]:
        with self._lock:
            renewals = dict(self.renewals)
            models, usage = list(self.models.values()), dict(self.usage)
        serving = self.serving_renewal()
        if serving is not None:
            renewals["serving"] = serving
        return models, usage, renewals


OBSERVED = ObservedState()


class ObservedCollector(Collector):
    """The series above, from an ``ObservedState``."""

    def __init__(
        self, state: ObservedState = OBSERVED, reconciling: Callable[[], bool] = LEADING.is_set
    ) -> None:
        self.state = state
        self.reconciling = reconciling

    def collect(self) -> Iterator[Metric]:
        models, usage, renewals = self.state.snapshot()
        # A standby knows no deployment or tenant: no series from it, rather than zeros that
        # would read as "none Ready" beside the leader's.
        leading = self.reconciling()
        if not leading:
            models, usage = [], {}
        now = self.state.clock()
        count = GaugeMetricFamily(
            "paitient_operator_model_deployments",
            "ModelDeployments by status phase.",
            labels=["phase"],
        )
        longest = GaugeMetricFamily(
            "paitient_operator_model_deployment_not_ready_seconds",
            "Seconds the longest not-Ready ModelDeployment of each phase has been not Ready "
            "(scaled-to-zero ones left out).",
            labels=["phase"],
        )
        for phase in PHASES if leading else ():
            count.add_metric([phase], sum(1 for m in models if m.phase == phase))
            ages = [
                (now - m.not_ready_since).total_seconds()
                for m in models
                if m.phase == phase and m.not_ready_since is not None
            ]
            if phase not in (c.PHASE_READY, c.PHASE_SCALED_TO_ZERO):  # nothing waits there
                longest.add_metric([phase], max([0.0, *ages]))
        used = GaugeMetricFamily(
            "paitient_operator_tenant_usage_tokens",
            "Tokens the tenant used in its current period (Tenant status.currentUsage).",
            labels=["tenant"],
        )
        limit = GaugeMetricFamily(
            "paitient_operator_tenant_usage_limit_tokens",
            "The tenant's token limit per period (Tenant status.usageLimit).",
            labels=["tenant"],
        )
        for tenant, (tokens, cap) in sorted(usage.items()):
            used.add_metric([tenant], tokens)
            limit.add_metric([tenant], cap)
        renewal = GaugeMetricFamily(
            "paitient_operator_certificate_renewal_timestamp_seconds",
            "Unix time at which a certificate the operator keeps is due for renewal (ca, "
            "front-door, and the earliest of the gateways' serving certificates).",
            labels=["certificate"],
        )
        for which in CERTIFICATES:
            if which in renewals:
                renewal.add_metric([which], renewals[which].timestamp())
        yield from (count, longest, used, limit, renewal)

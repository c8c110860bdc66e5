"""This pod's UsageReport: cumulative counters from the ledger, written to the API every few seconds.

Cumulative, so a retried or repeated write is harmless; the operator sums every pod's report
into ``Tenant.status.currentUsage``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from paitient_common.kubeapi import Kube, KubeError
from paitient_gateway.ledger import UsageCounters

log = logging.getLogger("paitient.gateway.report")

API_VERSION: Final = "paitient.ai/v1alpha1"
KIND: Final = "UsageReport"


def build_usage_report(
    pod: str, namespace: str, deployment: str, counters: UsageCounters
) -> dict[str, Any]:
    """The report object (pure): entries sorted, so an unchanged ledger renders the same."""
    entries = [
        {
            "tenant": tenant,
            "periodStart": period,
            "promptTokens": c.prompt_tokens,
            "completionTokens": c.completion_tokens,
            "requests": c.requests,
        }
        for (tenant, period), c in sorted(counters.entries.items())
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": pod,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/part-of": "paitient",
                "paitient.ai/model-deployment": deployment,
            },
        },
        "spec": {
            "pod": pod,
            "modelDeployment": deployment,
            "entries": entries,
            "keyLastUsed": dict(sorted(counters.key_last_used.items())),
        },
    }


class UsageReporter:
    """Writes the report when the counters changed; remembers what it last wrote."""

    def __init__(
        self, kube: Kube | None, pod: str, namespace: str, deployment: str, counters: UsageCounters
    ) -> None:
        self.kube = kube
        self.pod, self.namespace, self.deployment = pod, namespace, deployment
        self.counters = counters
        self.flushed: dict[tuple[str, str], int] = {}
        self._last_spec: dict[str, Any] | None = None

    def unreported(self, tenant: str, period_start: str) -> int:
        """Tokens counted here but not yet in a written report."""
        key = (tenant, period_start)
        return self.counters.total(tenant, period_start) - self.flushed.get(key, 0)

    def _write(self, report: dict[str, Any]) -> None:
        assert self.kube is not None
        existing = self.kube.get(API_VERSION, KIND, self.pod, namespace=self.namespace)
        if existing is None:
            try:
                self.kube.create(report)
                return
            except KubeError as exc:
                if exc.status != 409:
                    raise
        self.kube.patch(
            API_VERSION, KIND, self.pod, {"spec": report["spec"]}, namespace=self.namespace
        )

    async def flush(self) -> bool:
        """Write the report if it changed; True when written (or nothing to write)."""
        if self.kube is None:
            return True
        snapshot = {k: c.total for k, c in self.counters.entries.items()}
        report = build_usage_report(self.pod, self.namespace, self.deployment, self.counters)
        if report["spec"] == self._last_spec:
            return True
        await asyncio.to_thread(self._write, report)
        self._last_spec = report["spec"]
        self.flushed = snapshot
        return True

    async def run(self, interval: float, on_failure: Any = None) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception as exc:
                log.warning("writing the UsageReport failed: %s", type(exc).__name__)
                if on_failure is not None:
                    on_failure()

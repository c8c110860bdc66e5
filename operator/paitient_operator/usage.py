"""Sum the gateways' UsageReports into a tenant's usage (pure).

Reports are cumulative per (pod, tenant, period): summing the latest report of every pod gives
the tenant's total, and a report written twice counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Totals:
    """Usage of one tenant in one period."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.requests + other.requests,
        )


def usage_by_period(reports: Iterable[Mapping[str, Any]], tenant: str) -> dict[str, Totals]:
    """periodStart -> the tenant's totals over every pod's report."""
    totals: dict[str, Totals] = {}
    for report in reports:
        for entry in report.get("spec", {}).get("entries", []) or []:
            if entry.get("tenant") != tenant:
                continue
            start = str(entry.get("periodStart"))
            counted = Totals(
                int(entry.get("promptTokens", 0)),
                int(entry.get("completionTokens", 0)),
                int(entry.get("requests", 0)),
            )
            totals[start] = totals.get(start, Totals()) + counted
    return totals


def tenants_in(report: Mapping[str, Any]) -> set[str]:
    """Tenants a report has counters for."""
    return {str(e.get("tenant")) for e in report.get("spec", {}).get("entries", []) or []}

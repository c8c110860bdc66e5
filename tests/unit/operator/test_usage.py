"""A tenant's usage summed from the gateways' UsageReports (``paitient_operator.usage``, pure)."""

from __future__ import annotations

from typing import Any

from paitient_operator.usage import Totals, tenants_in, usage_by_period

NOV, DEC = "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"


def report(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"entries": list(entries)}}


def entry(tenant: str, period: str, prompt: int, completion: int, requests: int) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "periodStart": period,
        "promptTokens": prompt,
        "completionTokens": completion,
        "requests": requests,
    }


def test_every_pods_report_adds_up_per_period_for_the_tenant_only() -> None:
    reports = [
        report(entry("acme", DEC, 100, 50, 3), entry("acme", NOV, 7000, 3000, 40), entry("beta", DEC, 9, 9, 1)),
        report(entry("acme", DEC, 20, 30, 1)),
        {"spec": {}},  # a pod that has served nobody yet
    ]  # fmt: skip
    totals = usage_by_period(reports, "acme")
    assert totals == {DEC: Totals(120, 80, 4), NOV: Totals(7000, 3000, 40)}
    assert totals[DEC].tokens == 200
    assert usage_by_period(reports, "beta") == {DEC: Totals(9, 9, 1)}
    assert usage_by_period(reports, "nobody") == {}


def test_a_report_rewritten_with_higher_totals_replaces_never_adds() -> None:
    """Reports are cumulative: the latest copy of each pod's report is what counts."""
    first = [report(entry("acme", DEC, 10, 10, 1))]
    rewritten = [report(entry("acme", DEC, 30, 40, 2))]
    assert usage_by_period(first, "acme")[DEC].tokens == 20
    assert usage_by_period(rewritten, "acme")[DEC].tokens == 70


def test_the_tenants_a_report_counts_for() -> None:
    assert tenants_in(report(entry("acme", DEC, 1, 1, 1), entry("beta", NOV, 1, 1, 1))) == {
        "acme",
        "beta",
    }
    assert tenants_in({"spec": {"entries": None}}) == set()

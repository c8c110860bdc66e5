"""The series the alerts read: deployments by phase and how long they have not been Ready,
tenants' usage against their limit, when the operator's certificates are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from paitient_operator.observed_metrics import ObservedCollector, ObservedState, model_state

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _status(phase: str, ready: str, reason: str, since: datetime) -> dict[str, object]:
    condition = {
        "type": "Ready",
        "status": ready,
        "reason": reason,
        "lastTransitionTime": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {"phase": phase, "conditions": [condition]}


def _scrape(
    state: ObservedState, leading: bool = True
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(ObservedCollector(state, reconciling=lambda: leading))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_scaled_to_zero_deployment_is_not_stuck() -> None:
    since = NOW - timedelta(hours=1)
    assert (
        model_state(_status("Progressing", "False", "ScaledToZero", since)).not_ready_since is None
    )
    assert model_state(_status("Ready", "True", "Ready", since)).not_ready_since is None
    stuck = model_state(_status("Pending", "False", "GPUCapacity", since))
    assert (stuck.phase, stuck.not_ready_since) == ("Pending", since)
    assert model_state({}).phase == "Pending"


def test_a_standby_reports_no_deployment_or_tenant_series() -> None:
    """Two operators are scraped; the one standing by knows nothing, and a 0 from it beside the
    leader's 1 would read as "none Ready" to a query that takes either series."""
    state = ObservedState(clock=lambda: NOW)
    state.model("a", "ready", _status("Ready", "True", "Ready", NOW))
    state.tenant("t", {"currentUsage": 5, "usageLimit": 10})
    leader, standby = _scrape(state), _scrape(state, leading=False)
    assert leader[("paitient_operator_model_deployments", (("phase", "Ready"),))] == 1
    assert leader[("paitient_operator_tenant_usage_tokens", (("tenant", "t"),))] == 5
    assert not [name for name, _ in standby if "model_deployment" in name or "tenant" in name]


def test_phases_are_counted_and_the_longest_wait_is_one_series_per_phase() -> None:
    state = ObservedState(clock=lambda: NOW)
    state.model("a", "ready", _status("Ready", "True", "Ready", NOW - timedelta(days=2)))
    state.model("a", "gpu", _status("Pending", "False", "GPUCapacity", NOW - timedelta(hours=2)))
    state.model("b", "gpu", _status("Pending", "False", "GPUCapacity", NOW - timedelta(hours=1)))
    state.model("b", "zero", _status("ScaledToZero", "False", "ScaledToZero", NOW))
    state.model("b", "slow", _status("Progressing", "False", "Progressing", NOW - timedelta(60)))
    state.model_gone("b", "slow")
    series = _scrape(state)
    count = {
        dict(labels)["phase"]: v
        for (name, labels), v in series.items()
        if name == "paitient_operator_model_deployments"
    }
    assert count == {
        "Pending": 2, "Progressing": 0, "Ready": 1, "Degraded": 0, "Failed": 0, "ScaledToZero": 1,
    }  # fmt: skip
    longest = {
        dict(labels)["phase"]: v
        for (name, labels), v in series.items()
        if name == "paitient_operator_model_deployment_not_ready_seconds"
    }
    assert longest == {"Pending": 7200, "Progressing": 0, "Degraded": 0, "Failed": 0}


def test_tenant_usage_and_limit_and_a_refused_tenant_has_none() -> None:
    state = ObservedState(clock=lambda: NOW)
    state.tenant("acme", {"currentUsage": 950, "usageLimit": 1000})
    state.tenant("bad", {"currentUsage": 5, "usageLimit": 10})
    state.tenant("bad", {"message": "unknown tier"})
    state.tenant("gone", {"currentUsage": 1, "usageLimit": 10})
    state.tenant_gone("gone")
    series = _scrape(state)
    assert series[("paitient_operator_tenant_usage_tokens", (("tenant", "acme"),))] == 950
    assert series[("paitient_operator_tenant_usage_limit_tokens", (("tenant", "acme"),))] == 1000
    tenants = {dict(labels).get("tenant") for (name, labels) in series if "tenant" in name}
    assert tenants == {"acme"}


def test_certificate_renewal_times_including_the_earliest_serving_one() -> None:
    state = ObservedState(clock=lambda: NOW)
    state.certificate("ca", NOW + timedelta(days=100))
    state.serving_renewal = lambda: NOW - timedelta(minutes=5)
    series = _scrape(state)
    name = "paitient_operator_certificate_renewal_timestamp_seconds"
    assert series[(name, (("certificate", "ca"),))] == (NOW + timedelta(days=100)).timestamp()
    assert series[(name, (("certificate", "serving"),))] == (NOW - timedelta(minutes=5)).timestamp()
    assert (name, (("certificate", "front-door"),)) not in series

"""The alert rules (charts/paitient/files/alerts.yaml): promtool accepts them as a plain rule file
and as the chart renders them into its PrometheusRule; promtool's unit tests (alerts_test.yaml)
make each alert fire when its condition holds and stay quiet when it does not; every alert is
tested, labelled and described, and its runbook section exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.unit.monitoring.promtool import promtool
from tests.unit.test_helm_chart import CHART, REPO, by_kind, render

RULES = CHART / "files" / "alerts.yaml"
TESTS = Path(__file__).with_name("alerts_test.yaml")


def _alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rule_file() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_accepts_the_rendered_prometheus_rule(tmp_path: Path) -> None:
    values = {
        "monitoring": {
            "prometheusRule": {
                "enabled": True,
                "alertLabels": {"team": "ml-platform"},
                "disabled": ["PaitientTenantUsageLimitReached"],
            }
        }
    }
    (rule,) = by_kind(render(values), "PrometheusRule")
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts()) - 1} rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    result = promtool("test", "rules", TESTS.name, cwd=TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_a_severity_and_a_runbook() -> None:
    tested = {
        case["alertname"]
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    runbook = (REPO / "docs" / "monitoring.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    for alert in _alerts():
        name = str(alert["alert"])
        assert name in tested, f"{name} has no promtool test that makes it fire"
        labels, annotations = alert["labels"], alert["annotations"]
        assert isinstance(labels, dict) and labels["severity"] in ("warning", "critical"), name
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        anchor = str(annotations["runbook_url"]).rpartition("#")[2]
        assert anchor == name.lower() and anchor in anchors, f"docs/monitoring.md#{anchor}"

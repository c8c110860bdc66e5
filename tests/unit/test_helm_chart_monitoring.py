"""The chart's Prometheus Operator objects: what each monitor scrapes (port, scheme, TLS trust),
which pods the gateways' PodMonitor selects, the PrometheusRule built from files/alerts.yaml,
and the clear refusals when a monitor could not work. Every object is validated against the
Prometheus Operator's own CRDs (tests/unit/chart_schemas.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from paitient_operator.builders.deployment import METRICS_PORT_NAME, build_deployment
from paitient_operator.config import OperatorConfig
from tests.unit.chart_schemas import validate
from tests.unit.operator.factories import make_md
from tests.unit.test_helm_chart import CHART, NAMESPACE, RELEASE, Obj, by_kind, helm, one, render

ALL: Obj = {
    "operator": {
        "config": {"gateway": {"metricsPort": 9090}, "monitoringNamespaces": ["monitoring"]}
    },
    "monitoring": {
        "labels": {"release": "kube-prometheus-stack"},
        "interval": "15s",
        "serviceMonitor": {"enabled": True},
        "podMonitors": {"operator": {"enabled": True}, "gateways": {"enabled": True}},
        "prometheusRule": {"enabled": True},
    },
}


def _with(extra: Obj) -> Obj:
    values: Obj = json.loads(json.dumps(ALL))
    for key, value in extra.items():
        values.setdefault(key, {}).update(value)
    return values


def _fails(values: Obj) -> str:
    result = helm("template", RELEASE, str(CHART), "--values", "-", stdin=json.dumps(values))
    assert result.returncode != 0
    return result.stderr


def test_off_by_default() -> None:
    kinds = {o["kind"] for o in render({})}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize(
    "values",
    [
        ALL,
        _with({"frontDoor": {"tls": {"enabled": False}}}),
        _with({"frontDoor": {"tls": {"existingSecret": "api-cert"}}}),
    ],
    ids=["default tls", "plain http", "existing secret"],
)
def test_every_monitoring_object_is_valid_for_the_prometheus_operator(values: Obj) -> None:
    objects = [o for o in render(values) if o["apiVersion"] == "monitoring.coreos.com/v1"]
    assert sorted(o["kind"] for o in objects) == [
        "PodMonitor",
        "PodMonitor",
        "PrometheusRule",
        "ServiceMonitor",
    ]
    for obj in objects:
        assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert obj["metadata"]["namespace"] == NAMESPACE
        validate(obj, f"{obj['kind']}/{obj['metadata']['name']}")


def test_the_front_door_is_scraped_over_https_verified_against_the_operators_ca() -> None:
    objects = render(ALL)
    monitor = one(objects, "ServiceMonitor", "paitient-api")
    service = one(objects, "Service", "paitient-api")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "https"
    assert (endpoint["scheme"], endpoint["path"], endpoint["interval"]) == (
        "https",
        "/metrics",
        "15s",
    )
    assert endpoint["tlsConfig"] == {
        "serverName": f"paitient-api.{NAMESPACE}.svc",
        "ca": {"configMap": {"name": "paitient-ca-bundle", "key": "ca.crt"}},
    }
    # An existing Secret: its CA is the user's to name (tlsConfig); the Service's name stays.
    own = _with({"frontDoor": {"tls": {"existingSecret": "api-cert"}}})
    (endpoint,) = one(render(own), "ServiceMonitor", "paitient-api")["spec"]["endpoints"]
    assert endpoint["tlsConfig"] == {"serverName": f"paitient-api.{NAMESPACE}.svc"}
    given = _with(
        {
            "monitoring": {
                "serviceMonitor": {
                    "enabled": True,
                    "tlsConfig": {"ca": {"secret": {"name": "ca", "key": "ca.crt"}}},
                }
            }
        }
    )
    (endpoint,) = one(render(given), "ServiceMonitor", "paitient-api")["spec"]["endpoints"]
    assert endpoint["tlsConfig"] == {"ca": {"secret": {"name": "ca", "key": "ca.crt"}}}
    plain = _with({"frontDoor": {"tls": {"enabled": False}}})
    (endpoint,) = one(render(plain), "ServiceMonitor", "paitient-api")["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["scheme"]) == ("http", "http")
    assert "tlsConfig" not in endpoint


def test_the_operator_pod_monitor_scrapes_its_metrics_port() -> None:
    objects = render(ALL)
    monitor = one(objects, "PodMonitor", "paitient-operator")
    pod = one(objects, "Deployment", "paitient-operator")["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert ports[endpoint["port"]] == 8081
    assert (endpoint["scheme"], endpoint["path"]) == ("http", "/metrics")
    off = _with({"operator": {"metrics": {"enabled": False}}})
    assert "needs operator.metrics.enabled" in _fails(off)


def test_the_gateways_pod_monitor_selects_model_pods_in_every_namespace() -> None:
    objects = render(ALL)
    monitor = one(objects, "PodMonitor", "paitient-gateways")
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    # A model pod as the operator renders it with the chart's gateway settings.
    config = OperatorConfig.model_validate(ALL["operator"]["config"])
    pod = build_deployment(make_md("m").namespace("tenant-a").obj(), config)["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"]
             for p in c.get("ports", [])}  # fmt: skip
    assert endpoint["port"] == METRICS_PORT_NAME and ports[endpoint["port"]] == 9090
    assert endpoint["scheme"] == "http"
    assert endpoint["relabelings"] == [
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_paitient_ai_modeldeployment"],
            "targetLabel": "modeldeployment",
        }
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"monitoringNamespaces": ["monitoring"]}, "needs operator.config.gateway.metricsPort"),
        ({"gateway": {"metricsPort": 9090}}, "needs operator.config.monitoringNamespaces"),
    ],
)
def test_the_gateways_pod_monitor_refuses_what_would_not_reach_them(
    config: Obj, message: str
) -> None:
    values: Any = json.loads(json.dumps(ALL))
    values["operator"]["config"] = config
    assert message in _fails(values)


def test_the_prometheus_rule_is_the_rule_file_with_labels_and_without_disabled_alerts() -> None:
    plain = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    (rule,) = by_kind(render(ALL), "PrometheusRule")
    assert rule["spec"]["groups"] == plain["groups"]
    values = _with(
        {
            "monitoring": {
                "prometheusRule": {
                    "enabled": True,
                    "alertLabels": {"team": "ml", "severity": "page"},
                    "disabled": ["PaitientGatewayErrors", "PaitientUsageReportsFailing"],
                }
            }
        }
    )
    (rule,) = by_kind(render(values), "PrometheusRule")
    names = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    expected = [r["alert"] for g in plain["groups"] for r in g["rules"]]
    assert names == [n for n in expected if not n.startswith(("PaitientGateway", "PaitientUsageR"))]
    assert "paitient.gateways" not in [g["name"] for g in rule["spec"]["groups"]]
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            assert alert["labels"]["team"] == "ml"
            assert alert["labels"]["severity"] in ("warning", "critical")  # the file's own
    typo = _with({"monitoring": {"prometheusRule": {"enabled": True, "disabled": ["Nope"]}}})
    assert "no alert is called Nope" in _fails(typo)

"""Service and NetworkPolicy: only the gateway port, only from who may call; egress minimal."""

from __future__ import annotations

from typing import Any

from paitient_operator.builders.network_policy import build_network_policy
from paitient_operator.builders.service import build_service, endpoint_url
from paitient_operator.config import OperatorConfig
from tests.unit.operator.factories import make_md


def test_service_exposes_only_the_gateway(config: OperatorConfig) -> None:
    svc = build_service(make_md("a").obj(), config)
    assert svc["kind"] == "Service" and svc["metadata"]["name"] == "a"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "gateway", "port": 8443, "targetPort": "gateway", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"]["paitient.ai/modeldeployment"] == "a"
    assert "ownerReferences" not in svc["metadata"]
    assert endpoint_url(make_md("a").obj(), config) == "https://a.tenant-demo.svc:8443"


def _namespaces(rule: dict[str, Any]) -> list[str]:
    return [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for p in rule["from"]]  # fmt: skip


def test_ingress_only_gateway_port_from_front_door_and_allowed(config: OperatorConfig) -> None:
    np = build_network_policy(make_md("a").allow("clinical-apps").obj(), config)
    spec = np["spec"]
    assert spec["podSelector"]["matchLabels"]["paitient.ai/modeldeployment"] == "a"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert _namespaces(rule) == ["clinical-apps", "paitient-system"]
    for peer in rule["from"]:
        assert set(peer) == {"namespaceSelector"}  # no ipBlock, no bare podSelector


def test_ingress_without_allowed_namespaces_is_front_door_only(config: OperatorConfig) -> None:
    (rule,) = build_network_policy(make_md("a").obj(), config)["spec"]["ingress"]
    assert _namespaces(rule) == ["paitient-system"]


def _egress_ports(np: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for r in np["spec"]["egress"] for p in r["ports"]}


def test_egress_dns_and_https_for_remote_sources(config: OperatorConfig) -> None:
    np = build_network_policy(make_md("a").obj(), config)
    assert _egress_ports(np) == {("UDP", 53), ("TCP", 53), ("TCP", 443)}
    dns = np["spec"]["egress"][0]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    s3 = build_network_policy(make_md("a").uri("s3://bucket/m").obj(), config)
    assert ("TCP", 443) in _egress_ports(s3)


def test_no_https_egress_for_in_cluster_weights(config: OperatorConfig) -> None:
    np = build_network_policy(make_md("a").uri("pvc://weights/m").obj(), config)
    assert _egress_ports(np) == {("UDP", 53), ("TCP", 53)}


def test_https_egress_can_be_closed_after_download(config: OperatorConfig) -> None:
    np = build_network_policy(make_md("a").obj(), config, allow_model_download=False)
    assert ("TCP", 443) not in _egress_ports(np)


def test_api_server_endpoints_are_let_out(config: OperatorConfig) -> None:
    np = build_network_policy(
        make_md("a").uri("pvc://w/m").obj(), config,
        api_server_endpoints=[("10.0.0.1", 6443), ("fd00::1", 6443)],
    )  # fmt: skip
    rules = [r for r in np["spec"]["egress"] if "to" in r and "ipBlock" in r["to"][0]]
    assert [r["to"][0]["ipBlock"]["cidr"] for r in rules] == ["10.0.0.1/32", "fd00::1/128"]
    assert all(r["ports"] == [{"protocol": "TCP", "port": 6443}] for r in rules)


def test_dns_anywhere_when_no_dns_namespace() -> None:
    config = OperatorConfig.model_validate({"dnsNamespace": None})
    dns = build_network_policy(make_md("a").obj(), config)["spec"]["egress"][0]
    assert "to" not in dns


def test_metrics_port_only_from_monitoring_namespaces() -> None:
    config = OperatorConfig.model_validate(
        {"gateway": {"metricsPort": 9090}, "monitoringNamespaces": ["monitoring"]}
    )
    ingress = build_network_policy(make_md("a").obj(), config)["spec"]["ingress"]
    assert ingress[1]["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert _namespaces(ingress[1]) == ["monitoring"]
    svc = build_service(make_md("a").obj(), config)
    assert [p["port"] for p in svc["spec"]["ports"]] == [8443]  # metrics are not in the Service

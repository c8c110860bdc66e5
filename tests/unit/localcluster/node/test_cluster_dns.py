"""The cluster DNS: CoreDNS as a pod in kube-system behind the kube-dns Service."""

from __future__ import annotations

from pathlib import Path

from paitient_localcluster.addresses import DNS_SERVICE_IP
from paitient_localcluster.node import cluster_dns


def test_dns_is_a_pod_in_kube_system_behind_the_kube_dns_service() -> None:
    """NetworkPolicies name the DNS by its namespace: it must be a pod there, not the node."""
    binary = Path("/cache/coredns-v1/coredns")
    objects = {(o["kind"], o["metadata"]["name"]): o for o in cluster_dns.objects(binary, "p:1")}
    deployment = objects[("Deployment", "coredns")]
    assert deployment["metadata"]["namespace"] == "kube-system"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "p:1" and container["imagePullPolicy"] == "Never"
    assert container["command"][0] == "/opt/coredns/coredns"
    assert {"name": "binary", "hostPath": {"path": "/cache/coredns-v1", "type": "Directory"}} in (
        pod["volumes"]
    )
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    service = objects[("Service", "kube-dns")]
    assert service["spec"]["clusterIP"] == DNS_SERVICE_IP
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert {(p["protocol"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("UDP", 53, cluster_dns.LISTEN_PORT),
        ("TCP", 53, cluster_dns.LISTEN_PORT),
    }
    corefile = objects[("ConfigMap", "coredns")]["data"]["Corefile"]
    assert f":{cluster_dns.LISTEN_PORT}" in corefile and "kubernetes cluster.local" in corefile
    assert "forward" not in corefile  # nothing outside the namespace to forward to
    binding = objects[("ClusterRoleBinding", "paitient:node:coredns")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}
    ]
    role = objects[("ClusterRole", "paitient:node:coredns")]
    assert all(set(rule["verbs"]) == {"get", "list", "watch"} for rule in role["rules"])

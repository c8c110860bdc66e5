"""The cluster DNS: CoreDNS as a pod in ``kube-system`` behind the ``kube-dns`` Service (pure:
manifests out).

A pod, not a process of the node, because NetworkPolicies name the DNS by its namespace: the
operator's and the chart's policies let pods reach port 53 in ``kube-system`` only, and a policy
peer selects pods, never a node address. The pod runs the CoreDNS binary built from its Go
module (``localcluster/gomod/coredns``), mounted read-only from the binary cache into a pod
whose image is the pause image (a root filesystem that holds nothing else): no image of its own
to build. It answers cluster names only (nothing outside the cluster's namespace is reachable,
so there is no forwarder), listens on port 53 as an unprivileged user with no capability, and
reads the API as its ServiceAccount with a read-only role.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from ..addresses import DNS_SERVICE_IP
from ..controlplane.pki import NODE_NAME
from .config import CLUSTER_DOMAIN, cluster_role, read_rule

NAMESPACE: Final = "kube-system"
NAME: Final = "coredns"
LABELS: Final = {"k8s-app": "kube-dns", "app.kubernetes.io/part-of": "paitient-localcluster"}
DNS_PORT: Final = 53
# Port 53 in the pod too: a NetworkPolicy's port is the pod's, after the Service's translation,
# and the product's policies allow DNS on 53. No capability is needed for it: containerd opens
# every port to unprivileged users in a pod's own network namespace (enable_unprivileged_ports).
LISTEN_PORT: Final = DNS_PORT
HEALTH_PORT: Final = 8080
READY_PORT: Final = 8181
BINARY_DIR: Final = "/opt/coredns"


def corefile() -> str:
    return "\n".join(
        [
            f".:{LISTEN_PORT} {{",
            "    errors",
            f"    health :{HEALTH_PORT}",
            f"    ready :{READY_PORT}",
            f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{",
            "        pods insecure",
            "        fallthrough in-addr.arpa ip6.arpa",
            "        ttl 30",
            "    }",
            "    cache 30",
            "    loadbalance",
            "}",
            "",
        ]
    )


def _meta(kind_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": NAME, "namespace": NAMESPACE, "labels": dict(kind_labels or LABELS)}


def _pod_spec(binary: Path, image: str) -> dict[str, Any]:
    probe = {"timeoutSeconds": 2, "periodSeconds": 2}
    return {
        "serviceAccountName": NAME,
        "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
        "priorityClassName": "system-cluster-critical",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": NAME,
                "image": image,
                "imagePullPolicy": "Never",
                "command": [f"{BINARY_DIR}/{binary.name}", "-conf", "/etc/coredns/Corefile"],
                "ports": [{"name": "dns", "containerPort": LISTEN_PORT, "protocol": "UDP"},
                          {"name": "dns-tcp", "containerPort": LISTEN_PORT, "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": READY_PORT}, **probe},
                "livenessProbe": {"httpGet": {"path": "/health", "port": HEALTH_PORT},
                                  "failureThreshold": 5, **probe},
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                              "limits": {"memory": "256Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/coredns", "readOnly": True},
                    {"name": "binary", "mountPath": BINARY_DIR, "readOnly": True},
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": NAME}},
            {"name": "binary", "hostPath": {"path": str(binary.parent), "type": "Directory"}},
        ],
    }  # fmt: skip


def objects(binary: Path, image: str) -> list[dict[str, Any]]:
    """Everything the cluster DNS is made of; ``binary`` is CoreDNS in the binary cache,
    ``image`` the pause image's reference."""
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    service_labels = {**LABELS, "kubernetes.io/name": "CoreDNS"}
    selector = {"k8s-app": LABELS["k8s-app"]}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta()},
        *cluster_role(
            "paitient:node:coredns",
            [read_rule("", "endpoints", "services", "pods", "namespaces"),
             read_rule("discovery.k8s.io", "endpointslices")],
            {"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE},
        ),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(),
         "data": {"Corefile": corefile()}},
        {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": dict(LABELS)},
                             "spec": _pod_spec(binary, image)},
            },
        },
        {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": NAMESPACE, "labels": service_labels},
            "spec": {
                "clusterIP": DNS_SERVICE_IP,
                "selector": selector,
                "ports": [{"name": n, "protocol": p, "port": DNS_PORT, "targetPort": LISTEN_PORT}
                          for n, p in ports],
            },
        },
    ]  # fmt: skip

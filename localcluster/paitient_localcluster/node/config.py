"""The real node's configuration files and command lines (pure: paths and addresses in, text,
dicts and argv out).

The node is ``cpu-node-0``: containerd + runc, kubelet, kube-proxy (iptables) and kube-router's
NetworkPolicy controller only, every one inside the cluster's network, mount and cgroup
namespaces (the cluster DNS is a pod on it: ``cluster_dns.py``). Nothing here writes a global sysctl: kube-proxy is told to leave conntrack
alone, kubelet only checks the kernel settings it wants (``protectKernelDefaults``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..addresses import CLUSTER_CIDR, DNS_SERVICE_IP, NODE_POD_CIDR, SERVICE_CIDR
from ..controlplane.pki import NODE_NAME, Pki

CLUSTER_DOMAIN = "cluster.local"
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
RUNC = "/usr/sbin/runc"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"  # on the node's private tmpfs
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_ROUTER_HEALTH_PORT = 20244
NODE_LABELS = {"paitient.ai/simulated": "false", "paitient.ai/node": "real"}


@dataclass(frozen=True)
class NodeLayout:
    """Where the node keeps its files inside the cluster's run directory."""

    directory: Path

    @property
    def containerd_config(self) -> Path:
        return self.directory / "containerd.toml"

    @property
    def containerd_root(self) -> Path:
        return self.directory / "containerd"  # images and snapshots, kept between starts

    @property
    def cni_conf_dir(self) -> Path:
        return self.directory / "cni"

    @property
    def kubelet_config(self) -> Path:
        return self.directory / "kubelet.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.directory / "kube-proxy.yaml"


def containerd_config(layout: NodeLayout, sandbox_image: str) -> str:
    """containerd 1.6's config (TOML, version 2): CRI with runc under cgroupfs, CNI from our
    config directory, no plugin that would write outside our directories."""
    return "\n".join(
        [
            "version = 2",
            f'root = "{layout.containerd_root}"',
            'state = "/run/containerd"',
            # Plugins that would create /opt/containerd or probe other snapshotters.
            'disabled_plugins = ["io.containerd.internal.v1.opt", '
            '"io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", '
            '"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", '
            '"io.containerd.tracing.processor.v1.otlp"]',
            "[grpc]",
            f'  address = "{CONTAINERD_SOCKET}"',
            "[ttrpc]",
            '  address = ""',
            "[debug]",
            '  address = ""',
            '  level = "warn"',
            "[metrics]",
            '  address = ""',
            '[plugins."io.containerd.grpc.v1.cri"]',
            f'  sandbox_image = "{sandbox_image}"',
            # No CAP_SYS_RESOURCE in this VM: an OOM score below containerd's own is refused.
            "  restrict_oom_score_adj = true",
            "  enable_selinux = false",
            "  disable_apparmor = true",
            "  enable_unprivileged_ports = true",
            "  enable_unprivileged_icmp = true",
            '[plugins."io.containerd.grpc.v1.cri".containerd]',
            '  default_runtime_name = "runc"',
            '  snapshotter = "overlayfs"',
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
            '  runtime_type = "io.containerd.runc.v2"',
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
            f'  BinaryName = "{RUNC}"',
            "  SystemdCgroup = false",
            '[plugins."io.containerd.grpc.v1.cri".cni]',
            f'  bin_dir = "{CNI_BIN_DIR}"',
            f'  conf_dir = "{layout.cni_conf_dir}"',
            "  max_conf_num = 1",
            "",
        ]
    )


def cni_conflist() -> dict[str, Any]:
    """One bridge for the node's pods, addresses from host-local, hostPort via portmap.
    containerd's CRI runs the plugins inside the node's namespace."""
    return {
        "cniVersion": "1.0.0",
        "name": "paitient-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,  # nothing outside the namespace to masquerade to
                "hairpinMode": True,  # a pod reaching itself through its Service
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": NODE_POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(pki: Pki, node_ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "tlsCertFile": str(pki.serving_cert_of("kubelet")),
        "tlsPrivateKeyFile": str(pki.serving_key_of("kubelet")),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        # cgroupfs under the node's own cgroup (its cgroup namespace makes that the root); no
        # QoS hierarchy and no node-allocatable enforcement, which would write limits there.
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "protectKernelDefaults": True,
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        # Pods with dnsPolicy Default get no nameserver: nothing outside the cluster answers.
        "resolvConf": "",
        "rotateCertificates": False,
        "serializeImagePulls": False,
        "maxPods": 110,
        "registerNode": True,
        # No eviction or image garbage collection for disk ("0%" turns a signal off; a high
        # threshold of 100 turns image GC off): the node's images are imported, never pulled,
        # so one the kubelet deletes is gone for good, and development machines share their
        # disk, which other work fills for minutes at times (it did: every image went).
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "0%",
                         "nodefs.inodesFree": "0%", "imagefs.available": "0%",
                         "imagefs.inodesFree": "0%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "logging": {"verbosity": 1},
    }  # fmt: skip


def kube_proxy_config(kubeconfig: Path, node_ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": node_ip,
        "healthzBindAddress": f"127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": "127.0.0.1:10249",
        "mode": "iptables",
        "clusterCIDR": CLUSTER_CIDR,
        "nodePortAddresses": [f"{node_ip}/32"],
        "iptables": {"localhostNodePorts": False},
        # Zero means "leave the kernel's value": nf_conntrack_max is global to the machine.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def containerd_argv(binary: str, layout: NodeLayout) -> list[str]:
    return [binary, "--config", str(layout.containerd_config)]


def kubelet_argv(binary: Path, layout: NodeLayout, kubeconfig: Path, node_ip: str) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(NODE_LABELS.items()))
    return [
        str(binary),
        f"--config={layout.kubelet_config}",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={node_ip}",
        f"--node-labels={labels}",
    ]


def kube_proxy_argv(binary: Path, layout: NodeLayout) -> list[str]:
    return [str(binary), f"--config={layout.kube_proxy_config}", "--v=1"]


def kube_router_argv(binary: Path, kubeconfig: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        # The NetworkPolicy controller alone: pod networking is the CNI bridge's, Services
        # are kube-proxy's.
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--enable-cni=false",
        "--enable-pod-egress=false",
        "--enable-ipv6=false",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--health-port={KUBE_ROUTER_HEALTH_PORT}",
        "--iptables-sync-period=1m",
        "--v=1",
    ]


def cluster_role(
    name: str, rules: list[dict[str, Any]], subject: dict[str, str]
) -> list[dict[str, Any]]:
    """A ClusterRole and its binding to ``subject`` (a User or a ServiceAccount)."""
    meta = {"name": name, "labels": {"app.kubernetes.io/part-of": "paitient-localcluster"}}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta,
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [subject]},
    ]  # fmt: skip


def read_rule(group: str, *resources: str) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), "verbs": ["get", "list", "watch"]}


def kube_router_rbac(user: str) -> list[dict[str, Any]]:
    """Least privilege for the NetworkPolicy controller (kubelet and kube-proxy have built-in
    roles: the Node authorizer and ``system:node-proxier``)."""
    events = {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
              "verbs": ["create", "patch", "update"]}  # fmt: skip
    return cluster_role(
        "paitient:node:kube-router",
        [read_rule("", "namespaces", "pods", "services", "nodes", "endpoints"),
         read_rule("networking.k8s.io", "networkpolicies"),
         read_rule("discovery.k8s.io", "endpointslices"), events],
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user},
    )  # fmt: skip


def render_files(
    layout: NodeLayout, pki: Pki, node_ip: str, sandbox_image: str, kube_proxy_kubeconfig: Path
) -> dict[Path, str]:
    """Every file the node's programs read, by path (pure)."""
    return {
        layout.containerd_config: containerd_config(layout, sandbox_image),
        layout.cni_conf_dir / "10-paitient-node.conflist": json.dumps(cni_conflist(), indent=2),
        layout.kubelet_config: yaml.safe_dump(kubelet_config(pki, node_ip)),
        layout.kube_proxy_config: yaml.safe_dump(kube_proxy_config(kube_proxy_kubeconfig, node_ip)),
    }

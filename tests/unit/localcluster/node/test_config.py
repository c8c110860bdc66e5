"""The real node's configuration files and command lines."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from paitient_localcluster.addresses import DNS_SERVICE_IP, NODE_IP, SERVICE_CIDR
from paitient_localcluster.controlplane.pki import Pki
from paitient_localcluster.node import config as nodeconfig
from paitient_localcluster.node.config import NODE_NAME, NodeLayout

LAYOUT = NodeLayout(Path("/r/node"))


def test_containerd_keeps_everything_in_our_directories_and_runs_runc_under_cgroupfs() -> None:
    config = tomllib.loads(nodeconfig.containerd_config(LAYOUT, "example/pause:1"))
    assert config["root"] == "/r/node/containerd"
    assert config["state"] == "/run/containerd"  # the node's private tmpfs
    assert "io.containerd.internal.v1.opt" in config["disabled_plugins"]  # writes /opt otherwise
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "example/pause:1"
    assert cri["cni"]["conf_dir"] == "/r/node/cni"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is False


def test_cni_is_a_bridge_with_host_local_addresses_and_portmap() -> None:
    conflist = nodeconfig.cni_conflist()
    assert [p["type"] for p in conflist["plugins"]] == ["bridge", "portmap"]
    assert conflist["plugins"][0]["ipam"]["type"] == "host-local"
    assert conflist["plugins"][0]["ipMasq"] is False


def test_kubelet_checks_kernel_defaults_and_creates_no_cgroup_hierarchy_of_its_own() -> None:
    pki = Pki(Path("/r/pki"))
    config = nodeconfig.kubelet_config(pki, NODE_IP)
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["cgroupsPerQOS"] is False
    assert config["enforceNodeAllocatable"] == []
    assert config["failSwapOn"] is False
    assert config["protectKernelDefaults"] is True
    assert config["clusterDNS"] == [DNS_SERVICE_IP]
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authentication"]["x509"]["clientCAFile"] == str(pki.ca_cert)
    assert config["address"] == NODE_IP
    argv = nodeconfig.kubelet_argv(Path("/b/kubelet"), LAYOUT, Path("/r/node.kc"), NODE_IP)
    assert f"--node-ip={NODE_IP}" in argv and f"--hostname-override={NODE_NAME}" in argv
    assert not [a for a in argv if a.startswith("--register-with-taints")], "it takes any pod"


def test_kube_proxy_writes_no_machine_wide_conntrack_setting() -> None:
    config = nodeconfig.kube_proxy_config(Path("/r/kp.kc"), NODE_IP)
    assert config["mode"] == "iptables"
    # nf_conntrack_max is global to the machine: 0 = leave it; the timeouts too.
    assert config["conntrack"]["maxPerCore"] == 0 and config["conntrack"]["min"] == 0
    assert config["conntrack"]["tcpEstablishedTimeout"] == "0s"
    assert config["conntrack"]["tcpCloseWaitTimeout"] == "0s"
    assert config["hostnameOverride"] == NODE_NAME


def test_kube_router_runs_only_its_network_policy_controller() -> None:
    argv = nodeconfig.kube_router_argv(Path("/b/kube-router"), Path("/r/kr.kc"))
    for flag in ("--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
                 "--enable-cni=false", f"--service-cluster-ip-range={SERVICE_CIDR}"):  # fmt: skip
        assert flag in argv


def test_the_network_policy_controller_may_only_read_and_post_events() -> None:
    role, binding = nodeconfig.kube_router_rbac("router-user")
    assert binding["subjects"][0]["name"] == "router-user"
    writes = {v for r in role["rules"] for v in r["verbs"]} - {"get", "list", "watch"}
    assert writes == {"create", "patch", "update"}
    assert all(r["resources"] == ["events"] for r in role["rules"] if set(r["verbs"]) & writes)


def test_render_files_covers_every_config_the_programs_read() -> None:
    files = nodeconfig.render_files(LAYOUT, Pki(Path("/r/pki")), NODE_IP, "p:1", Path("/r/kp"))
    assert LAYOUT.containerd_config in files and LAYOUT.kubelet_config in files
    assert LAYOUT.kube_proxy_config in files
    conflists = [p for p in files if p.parent == LAYOUT.cni_conf_dir]
    assert len(conflists) == 1 and json.loads(files[conflists[0]])["name"] == "paitient-node"

"""The local cluster's pure parts: node manifests, command lines, build cache, kubeconfig."""

from __future__ import annotations

from pathlib import Path

from paitient_localcluster.addresses import NODE_IP
from paitient_localcluster.controlplane import commands
from paitient_localcluster.controlplane.commands import Layout, Ports
from paitient_localcluster.controlplane.kubeconfig import build_kubeconfig
from paitient_localcluster.simulated.nodes import GPU_TAINT, build_node, default_nodes
from paitient_localcluster.upstream.build import build_command
from paitient_localcluster.upstream.versions import COMPONENTS, KUBERNETES, cache_dir


def test_default_nodes_are_two_h100_gpu_nodes_and_one_cpu_node() -> None:
    nodes = default_nodes()
    gpu = [n for n in nodes if "nvidia.com/gpu" in n["status"]["capacity"]]
    cpu = [n for n in nodes if "nvidia.com/gpu" not in n["status"]["capacity"]]
    assert len(gpu) == 2 and len(cpu) == 1
    for node in gpu:
        assert node["status"]["capacity"]["nvidia.com/gpu"] == "8"
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        labels = node["metadata"]["labels"]
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert labels["nvidia.com/gpu.count"] == "8"
        assert node["spec"]["taints"] == [GPU_TAINT]
        assert GPU_TAINT == {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    assert "taints" not in cpu[0]["spec"]
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)


def test_cpu_node_has_no_gpu_labels() -> None:
    labels = build_node("c")["metadata"]["labels"]
    assert not any(k.startswith("nvidia.com/") for k in labels)


def test_listeners_bind_to_loopback_but_the_apiserver_also_serves_the_node_address() -> None:
    """All of them run inside the cluster's network namespace: its loopback is not the host's,
    and the node address exists only there."""
    layout, ports = Layout(Path("/run/x")), Ports.from_base(16400)
    binary = Path("/bin/x")
    etcd = commands.etcd_argv(binary, layout, ports)
    assert f"--listen-client-urls=http://127.0.0.1:{ports.etcd_client}" in etcd
    assert f"--listen-peer-urls=http://127.0.0.1:{ports.etcd_peer}" in etcd
    for argv in (
        commands.controller_manager_argv(binary, layout, ports),
        commands.scheduler_argv(binary, layout, ports),
    ):
        assert "--bind-address=127.0.0.1" in argv
    assert f"--server-address=127.0.0.1:{ports.kwok}" in commands.kwok_argv(binary, layout, ports)
    apiserver = commands.apiserver_argv(binary, layout, ports)
    assert f"--advertise-address={NODE_IP}" in apiserver
    assert "--kubelet-preferred-address-types=InternalIP" in apiserver


def test_apiserver_enables_rbac_and_pod_security() -> None:
    argv = commands.apiserver_argv(Path("/bin/x"), Layout(Path("/r")), Ports.from_base(16400))
    modes = next(a for a in argv if a.startswith("--authorization-mode=")).split("=", 1)[1]
    plugins = next(a for a in argv if a.startswith("--enable-admission-plugins=")).split("=", 1)[1]
    assert "RBAC" in modes.split(",")
    assert "PodSecurity" in plugins.split(",")


def test_ports_shift_with_the_base_and_never_collide() -> None:
    ports = Ports.from_base(20000).all()
    assert len(set(ports.values())) == len(ports)
    assert Ports.from_base(20000).apiserver - Ports.from_base(10000).apiserver == 10000


def test_spare_bases_never_share_a_port_with_a_checkouts_base_and_stay_below_ephemeral() -> None:
    checkout_ports = set().union(
        *(Ports.from_base(b).every_port() for b in range(10000, 33000, 100))
    )
    for base in commands.SPARE_BASES:
        ports = Ports.from_base(base).every_port()
        assert not ports & checkout_ports
        assert max(ports) < 32768
    order = commands.spare_base_order(7)
    assert sorted(order) == list(commands.SPARE_BASES)
    assert order[0] == commands.SPARE_BASES[7] != commands.spare_base_order(8)[0]


def test_binaries_are_cached_outside_the_repo_keyed_by_version(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PAITIENT_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    assert KUBERNETES.directory == tmp_path / f"kubernetes-{KUBERNETES.version}"
    assert {c.directory for c in COMPONENTS} == {
        tmp_path / f"{c.key}-{c.version}" for c in COMPONENTS
    }
    assert len({c.directory for c in COMPONENTS}) == len(COMPONENTS), "each has its own folder"


def test_kubernetes_build_is_one_go_build_with_the_version_stamped() -> None:
    cmd = build_command("go", KUBERNETES)
    assert cmd[:2] == ["go", "build"]
    assert [p.rsplit("/", 1)[1] for p in cmd if p.startswith("k8s.io/kubernetes/cmd/")] == [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    ldflags = cmd[cmd.index("-ldflags") + 1]
    assert f"version.gitVersion={KUBERNETES.version}" in ldflags


def test_kubeconfig_points_at_the_server_with_the_given_identity() -> None:
    doc = build_kubeconfig(
        "https://127.0.0.1:1", Path("/p/ca.crt"), Path("/p/a.crt"), Path("/p/a.key")
    )
    assert doc["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:1",
        "certificate-authority": "/p/ca.crt",
    }
    assert doc["users"][0]["user"]["client-key"] == "/p/a.key"
    assert doc["current-context"] == doc["contexts"][0]["name"]

"""The control plane's command lines: where each program listens, what the API server enforces."""

from __future__ import annotations

from pathlib import Path

from paitient_localcluster.addresses import NODE_IP
from paitient_localcluster.controlplane import commands
from paitient_localcluster.controlplane.commands import Layout
from paitient_localcluster.controlplane.ports import Ports


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

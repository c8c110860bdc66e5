"""`make cluster` semantics on a second, throwaway cluster: reuse, restart after a crash,
clean stop that leaves nothing behind, and clear errors for busy ports and programs that die on
start."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane.ports import Ports, spare_ports
from paitient_localcluster.errors import ClusterError
from paitient_localcluster.host import cgroups
from paitient_localcluster.host.processes import Managed, port_owner
from paitient_localcluster.node.runtime import PAUSE_IMAGE, built_images
from tests.integration.waiting import wait_for


def _spare_ports() -> Ports:
    """Free ports beside the session cluster's (and clear of them while it is down), so both
    run side by side, as do other checkouts' clusters on the same machine."""
    return spare_ports(reserved=Ports.from_env().every_port())


@pytest.fixture
def spare_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    # Only the pause image: the session cluster's run directory keeps the big ones imported.
    pause = {PAUSE_IMAGE: built_images()[PAUSE_IMAGE]}
    cluster = LocalCluster(
        run_dir=tmp_path / "cluster",
        ports=_spare_ports(),
        log=lambda _m: None,
        node_images=pause,
    )
    try:
        yield cluster
    finally:
        cluster.down(quiet=True)


def test_up_twice_reuses_restart_after_crash_and_down_leaves_nothing(
    spare_cluster: LocalCluster,
) -> None:
    before = _host_state(spare_cluster)
    kubeconfig = spare_cluster.up()
    assert kubeconfig.is_absolute() and kubeconfig.is_file()
    first = spare_cluster.running()
    assert all(first.values())
    nodes = spare_cluster.node_summary()
    assert sum(1 for n in nodes if n["gpus"] == "8" and n["ready"]) >= 2
    assert any(n["name"] == "cpu-node-0" and n["ready"] for n in nodes), "the real node"
    running = _host_state(spare_cluster)
    assert running.pop("netns") == [spare_cluster.namespaces.name]
    assert running.pop("cgroups"), "the cluster's cgroups exist while it runs"
    assert running == {k: v for k, v in before.items() if k not in ("netns", "cgroups")}, (
        "nothing of the host changes while the cluster runs: routes, policy rules, links, "
        "iptables, ip_forward and the other sysctls, mounts, /run, /var/lib"
    )
    # Inside out: the node did write routes and iptables rules, in its own namespace.
    inside = _network(spare_cluster.namespaces.name)
    assert inside["routes4"] != before["network"]["routes4"], "the node's pod network routes"
    assert any("KUBE-SERVICES" in line for line in inside["iptables"]), "kube-proxy's rules"

    assert spare_cluster.up() == kubeconfig
    assert spare_cluster.running() == first, "a healthy cluster is reused, not restarted"

    # A crash: the namespace holder, containerd and the scheduler die at once. The next `up`
    # removes the leftovers (namespaces, cgroups, the other processes) and starts afresh.
    for name in ("namespaces", "containerd", "kube-scheduler"):
        pid = first[name]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda n=name: spare_cluster.process(n).read_pid() is None, what=f"{name} gone")
    seen = _cluster_pids(spare_cluster)
    spare_cluster.up()
    second = spare_cluster.running()
    assert all(second.values()) and second["kube-apiserver"] != first["kube-apiserver"]
    assert not any(_alive(p) for p in seen - set(second.values())), "leftovers are stopped"

    seen = _cluster_pids(spare_cluster)
    assert spare_cluster.down() == list(reversed(spare_cluster.processes))
    assert not [p for p in seen if _alive(p)]
    assert {name: port_owner(port) for name, port in spare_cluster.ports.all().items()} == {
        name: None for name in spare_cluster.ports.all()
    }
    assert _host_state(spare_cluster) == before, "no namespace, cgroup, mount or file is left"


def _cluster_pids(cluster: LocalCluster) -> set[int]:
    """Every process of the cluster: the recorded ones and whatever is in its cgroups."""
    recorded = {p for p in cluster.running().values() if p}
    return recorded | cgroups.pids(cgroups.find(cluster.namespaces.name))


def _host_state(cluster: LocalCluster) -> dict[str, object]:
    """What the host shows of a cluster: its namespace and cgroups, and everything of the host
    the node's programs would write if they were not inside namespaces of their own."""
    name = cluster.namespaces.name
    # Only mounts that could be the cluster's: other work on a shared machine mounts too.
    # (`ip netns add` binds the namespace at /run/netns/<name>: checked as "netns".)
    ours = (str(cluster.run_dir), *NODE_PATHS)
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return {
        "netns": sorted(p.name for p in Path("/run/netns").glob(f"{name}*")),
        "cgroups": sorted(map(str, cgroups.find(name))),
        "mounts": sorted(
            m
            for m in mounts
            if m.startswith(ours) or (name in m and not m.startswith("/run/netns/"))
        ),
        "interfaces": sorted(p.name for p in Path("/sys/class/net").iterdir()),
        "sysctls": {key: Path("/proc/sys", key).read_text() for key in HOST_SYSCTLS},
        "paths": {str(p): p.exists() for p in map(Path, NODE_PATHS)},
        "network": _network(None),
    }


def _network(netns: str | None) -> dict[str, object]:
    """Routes of every table (IPv4 and IPv6), policy rules, links and the iptables rules (both
    families, packet counters left out) of the host's network namespace, or of ``netns``."""
    inside = ["ip", "netns", "exec", netns] if netns else []

    def run(*argv: str) -> str:
        done = subprocess.run([*inside, *argv], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (argv, done.stderr)
        return done.stdout

    def ip(*args: str) -> list[dict[str, object]]:
        found: list[dict[str, object]] = json.loads(run("ip", "-j", *args) or "[]")
        return found

    def rules(save: str) -> list[str]:  # chains and rules, without counters or comments
        lines = run(save).splitlines()
        return [re.sub(r"\[\d+:\d+\]", "", ln) for ln in lines if not ln.startswith("#")]

    return {
        "routes4": ip("-4", "route", "show", "table", "all"),
        "routes6": ip("-6", "route", "show", "table", "all"),
        "rules": ip("rule", "show") + ip("-6", "rule", "show"),
        "links": sorted(
            (str(link["ifname"]), str(link.get("link_type")), str(link.get("master", "")))
            for link in ip("link", "show")
        ),
        "iptables": rules("iptables-save") + rules("ip6tables-save"),
    }


# What a node would change on a host it ran on directly.
HOST_SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
)
NODE_PATHS = (
    "/run/containerd",
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/lib/containerd",
    "/opt/containerd",
    "/var/log/pods",
    "/etc/cni/net.d/10-paitient-node.conflist",
)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and _not_zombie(pid)


def test_a_busy_port_is_named_with_its_owner(spare_cluster: LocalCluster) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", spare_cluster.ports.apiserver))
        squatter.listen()
        with pytest.raises(ClusterError) as err:
            spare_cluster.up()
    message = str(err.value)
    assert f"kube-apiserver port {spare_cluster.ports.apiserver}" in message
    assert f"pid {os.getpid()}" in message
    assert "PAITIENT_CLUSTER_PORT_BASE" in message
    assert all(pid is None for pid in spare_cluster.running().values())


def test_a_program_that_dies_on_start_shows_the_tail_of_its_log(tmp_path: Path) -> None:
    cluster = LocalCluster(run_dir=tmp_path, ports=_spare_ports(), log=lambda _m: None)
    cluster.process("etcd").start(
        ["/bin/sh", "-c", "echo 'listen tcp: address already in use' >&2; exit 3"]
    )
    with pytest.raises(ClusterError) as err:
        cluster._wait("etcd", lambda: False, timeout=10)
    assert "etcd exited during start" in str(err.value)
    assert "address already in use" in str(err.value)


def test_a_pid_file_of_another_program_is_never_signalled(tmp_path: Path) -> None:
    managed = Managed("etcd", tmp_path)
    # Our own pid, recorded as if it were etcd: the executable does not match, so it is stale.
    managed.pid_file.write_text(f'{{"pid": {os.getpid()}, "exe": "/nonexistent/etcd"}}')
    assert managed.read_pid() is None
    assert managed.stop() is False
    assert not managed.pid_file.exists()


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

"""`make cluster` semantics on a second, throwaway cluster: reuse, restart after a crash,
clean stop, and clear errors for busy ports and programs that die on start."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from paitient_localcluster.cluster import PROCESSES, LocalCluster
from paitient_localcluster.commands import Ports
from paitient_localcluster.errors import ClusterError
from paitient_localcluster.processes import Managed, port_owner, spare_ports
from tests.integration.waiting import wait_for


def _spare_ports() -> Ports:
    """Free ports beside the session cluster's (and clear of them while it is down), so both
    run side by side, as do other checkouts' clusters on the same machine."""
    return spare_ports(reserved=Ports.from_env().every_port())


@pytest.fixture
def spare_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(run_dir=tmp_path / "cluster", ports=_spare_ports(), log=lambda _m: None)
    try:
        yield cluster
    finally:
        cluster.down(quiet=True)


def test_up_twice_reuses_restart_after_crash_and_down_leaves_nothing(
    spare_cluster: LocalCluster,
) -> None:
    kubeconfig = spare_cluster.up()
    assert kubeconfig.is_absolute() and kubeconfig.is_file()
    first = spare_cluster.running()
    assert all(first.values())
    nodes = spare_cluster.node_summary()
    assert sum(1 for n in nodes if n["gpus"] == "8" and n["ready"]) >= 2

    assert spare_cluster.up() == kubeconfig
    assert spare_cluster.running() == first, "a healthy cluster is reused, not restarted"

    # A crashed component (stale pid file) makes the next `up` restart the whole cluster cleanly.
    scheduler_pid = first["kube-scheduler"]
    assert scheduler_pid is not None
    os.kill(scheduler_pid, signal.SIGKILL)
    wait_for(
        lambda: spare_cluster.process("kube-scheduler").read_pid() is None, what="scheduler gone"
    )
    spare_cluster.up()
    second = spare_cluster.running()
    assert all(second.values()) and second["kube-apiserver"] != first["kube-apiserver"]

    pids = [p for p in second.values() if p]
    assert spare_cluster.down() == list(reversed(PROCESSES))
    assert not any(Path(f"/proc/{p}").exists() and _not_zombie(p) for p in pids)
    assert {name: port_owner(port) for name, port in spare_cluster.ports.all().items()} == {
        name: None for name in spare_cluster.ports.all()
    }


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

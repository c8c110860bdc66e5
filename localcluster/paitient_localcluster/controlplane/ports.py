"""The control plane's loopback ports: one base shifts them all, and throwaway clusters (tests,
benchmarks) take a spare base whose every port is free."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ClusterError
from ..host.processes import port_owner


@dataclass(frozen=True)
class Ports:
    """Loopback ports; ``PAITIENT_CLUSTER_PORT_BASE`` shifts them all (default keeps clear of
    the well-known 2379/6443/10257/10259 of a real cluster on the same machine)."""

    base: int
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(base, base + 79, base + 80, base + 43, base + 57, base + 59, base + 88)

    @classmethod
    def from_env(cls) -> Ports:
        return cls.from_base(int(os.environ.get("PAITIENT_CLUSTER_PORT_BASE", "16400")))

    def all(self) -> dict[str, int]:
        return {
            "etcd": self.etcd_client,
            "etcd (peer)": self.etcd_peer,
            "kube-apiserver": self.apiserver,
            "kube-controller-manager": self.controller_manager,
            "kube-scheduler": self.scheduler,
            "kwok": self.kwok,
        }

    def every_port(self) -> set[int]:
        """Every port the base implies."""
        return set(self.all().values())


# Bases for throwaway clusters (tests, benchmarks): ending in 50, so their ports (base + 43 …
# base + 88) never meet those of a checkout's own base, which by convention ends in 00
# (16400, 27400, …); below the kernel's ephemeral range (32768+), where free_port()'s come from.
SPARE_BASES = range(20050, 32000, 100)


def spare_base_order(seed: int) -> list[int]:
    """``SPARE_BASES`` rotated by ``seed``: concurrent choosers (other checkouts' sessions)
    start at different bases instead of all racing for the first free one."""
    bases = list(SPARE_BASES)
    start = seed % len(bases)
    return bases[start:] + bases[:start]


def spare_ports(reserved: Iterable[int] = ()) -> Ports:
    """Ports for a throwaway cluster: the first base (``spare_base_order``) whose every port is
    free now and none of them ``reserved`` (e.g. the session cluster's, even while it is down)."""
    taken = set(reserved)
    for base in spare_base_order(os.getpid()):
        ports = Ports.from_base(base)
        if taken.isdisjoint(ports.every_port()) and not any(map(port_owner, ports.every_port())):
            return ports
    raise ClusterError(
        f"no free port base for a throwaway cluster in {SPARE_BASES[0]}-{SPARE_BASES[-1]}"
    )

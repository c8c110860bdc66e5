"""The cluster's network namespace: made with ``ip netns add``, removed with ``ip netns delete``.

Every address other than 127.0.0.0/8 lives in it: the node's IP sits on one end of a veth pair
whose both ends stay inside (the kernel has no dummy interfaces), the CNI bridge and every pod
hang off it. The host's namespace is never changed; the host reaches in only through the relay.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..addresses import NODE_IP, NODE_PREFIX, SERVICE_CIDR
from ..errors import ClusterError

NETNS_DIR = Path("/run/netns")
NODE_INTERFACE = "node0"  # carries the node IP
NODE_PEER = "node0-peer"  # its other end: unused, but a veth needs two (it forwards nothing)


@dataclass(frozen=True)
class NodeNetwork:
    """Addresses of the node inside its namespace (pure data; every cluster may use the same
    ones, since each has a namespace of its own)."""

    node_ip: str = NODE_IP
    prefix: int = NODE_PREFIX
    service_cidr: str = SERVICE_CIDR


def path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path(name).exists()


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def create(name: str, network: NodeNetwork) -> None:
    """The namespace with loopback up and the node's veth pair addressed (both ends inside)."""
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        # Created with -n, both ends of the pair are born inside the namespace.
        _ip("-n", name, "link", "add", NODE_INTERFACE, "type", "veth", "peer", "name", NODE_PEER)
        _ip("-n", name, "addr", "add", f"{network.node_ip}/{network.prefix}", "dev", NODE_INTERFACE)
        _ip("-n", name, "link", "set", NODE_PEER, "up")
        _ip("-n", name, "link", "set", NODE_INTERFACE, "up")
        # A route for the Service addresses, as a node's default route would give: a local
        # program's packet needs one before kube-proxy's OUTPUT rules rewrite its destination.
        # There is no default route: nothing outside the namespace exists to go to.
        _ip("-n", name, "route", "add", network.service_cidr, "dev", NODE_INTERFACE)
    except ClusterError:
        delete(name)
        raise


def delete(name: str) -> bool:
    """Remove the namespace (and with it every interface, route and rule in it); True if it
    existed. The kernel frees it once no process and no mount refers to it any more."""
    if not exists(name):
        return False
    _ip("netns", "delete", name)
    return True

"""The cluster's private view of the machine, held open by this small process.

It joins the cluster's cgroups and network namespace and takes fresh mount and cgroup
namespaces (the cgroup one rooted at the cluster's cgroups), makes the view, then waits. Every
process of the cluster joins its namespaces; when the last of them exits, the kernel drops every
mount made here: there is nothing to unmount.

The view: every mount private (nothing propagates back to the host); a sysfs of the cluster's
network namespace; the cgroup hierarchies mounted again, so they are rooted at the cluster's
cgroups (runc's per-container cgroups land below them); tmpfs on ``/run``, ``/var/lib`` and
``/var/log``, holding the directories kubelet, containerd and the CNI plugins insist on
(``/var/lib/kubelet``, ``/run/containerd``, ...), so nothing of the host's is written, not even
an empty directory; files holding the values kubelet demands bound over three kernel sysctls it
checks but must not change on the host (``protectKernelDefaults``); and the per-namespace
network sysctls a node needs (forwarding, bridged traffic through iptables).

    python -m paitient_localcluster.host.nodefs SPEC.json
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .cgroups import Hierarchy
from .linux import CLONE_NEWCGROUP, CLONE_NEWNET, CLONE_NEWNS, join_cgroups, setns, unshare
from .netns import NODE_PEER

# kubelet with protectKernelDefaults refuses to start unless these read so (it never writes).
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
}
# Per network namespace: written inside the node's namespace only.
NODE_NET_SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    # A Service address kube-proxy does not know leaves through the node's veth and comes back
    # on its peer: dropped there rather than bounced back and forth until its TTL runs out.
    f"net/ipv4/conf/{NODE_PEER}/forwarding": "0",
    "net/bridge/bridge-nf-call-iptables": "1",
    "net/bridge/bridge-nf-call-ip6tables": "1",
}
# tmpfs over directories that exist on every host, so not even an empty mount point is made
# there; the node's directories are made inside them.
PRIVATE_TMPFS = ("/run", "/var/lib", "/var/log")
PRIVATE_DIRECTORIES = (
    "/run/containerd",  # containerd's state and its shims' sockets (a fixed path in 1.6)
    "/run/netns",  # the pods' network namespaces, bound here by containerd's CRI
    "/var/lib/kubelet",
    "/var/lib/cni",  # host-local IPAM's leases
    "/var/log/pods",  # kubelet's container logs
)


@dataclass(frozen=True)
class Spec:
    """What the view holds (written by the cluster, read by this process)."""

    state_dir: str  # where the fake sysctl files and the ready marker go
    netns: str  # /run/netns/<name>
    cgroups: list[str] = field(default_factory=list)  # the cluster's, one per hierarchy
    hierarchies: list[dict[str, str]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Spec:
        return cls(**json.loads(path.read_text()))

    @property
    def ready_file(self) -> Path:
        return Path(self.state_dir) / "nodefs.ready"

    def sysctl_file(self, key: str) -> Path:
        return Path(self.state_dir) / "sysctl" / key.replace("/", ".")


def spec_for(
    state_dir: Path, netns: Path, cgroups: tuple[Path, ...], hierarchies: list[Hierarchy]
) -> Spec:
    return Spec(
        str(state_dir), str(netns), [str(c) for c in cgroups],
        [{"mountpoint": str(h.mountpoint), "fstype": h.fstype, "options": h.options}
         for h in hierarchies],
    )  # fmt: skip


def _enter_new_namespaces(spec: Spec) -> None:
    """Join the cluster's cgroups and network namespace, then take new mount and cgroup
    namespaces: the cgroup namespace is rooted where this process now is."""
    join_cgroups([Path(c) for c in spec.cgroups])
    fd = os.open(spec.netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)
    unshare(CLONE_NEWNS | CLONE_NEWCGROUP)


def mount_plan(spec: Spec) -> list[list[str]]:
    """The commands that make the view, in order (pure)."""
    plan = [
        ["mount", "--make-rprivate", "/"],
        ["mount", "-t", "sysfs", "-o", "nosuid,nodev,noexec", "sysfs", "/sys"],
        ["mount", "-t", "tmpfs", "-o", "nosuid,nodev,noexec,mode=755", "cgroup-root",
         "/sys/fs/cgroup"],
    ]  # fmt: skip
    for h in spec.hierarchies:
        plan.append(["mkdir", "-p", h["mountpoint"]])
        options = "nosuid,nodev,noexec" + ("," + h["options"] if h["fstype"] == "cgroup" else "")
        plan.append(["mount", "-t", h["fstype"], "-o", options, h["fstype"], h["mountpoint"]])
    for target in PRIVATE_TMPFS:
        plan.append(["mount", "-t", "tmpfs", "-o", "mode=755", "paitient-node", target])
    plan += [["mkdir", "-p", directory] for directory in PRIVATE_DIRECTORIES]
    for key in KUBELET_SYSCTLS:
        plan.append(["mount", "--bind", str(spec.sysctl_file(key)), f"/proc/sys/{key}"])
    return plan


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    spec = Spec.load(Path(args[0]))
    _enter_new_namespaces(spec)
    for key, value in KUBELET_SYSCTLS.items():
        spec.sysctl_file(key).parent.mkdir(parents=True, exist_ok=True)
        spec.sysctl_file(key).write_text(f"{value}\n")
    for command in mount_plan(spec):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"nodefs: `{' '.join(command)}` failed: {done.stderr.strip()}", file=sys.stderr)
            return 1
    for key, value in NODE_NET_SYSCTLS.items():
        Path("/proc/sys", key).write_text(value)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    spec.ready_file.write_text("ready\n")
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())

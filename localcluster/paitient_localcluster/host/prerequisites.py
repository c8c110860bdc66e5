"""Whether this machine can run the local cluster at all, checked before anything is installed or
started: root, Debian's apt, x86-64 and the kernel features the cluster's namespaces, cgroups and
containers use. Standard library only, so ``make`` can run it before the virtualenv exists:

    PYTHONPATH=localcluster python3 -m paitient_localcluster.host.prerequisites
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .cgroups import parse_mountinfo

# The namespaces the cluster makes (net, mnt, cgroup) and the ones its containers get from runc.
NAMESPACES = ("net", "mnt", "cgroup", "pid", "ipc", "uts")
# What kubelet and runc account and limit: CPU shares, memory limits, the pod's process count.
CONTROLLERS = ("cpu", "memory", "pids")
# containerd's overlayfs snapshotter; the node's root and the kubelet's volumes are tmpfs.
FILESYSTEMS = ("overlay", "tmpfs")
MACHINES = ("x86_64", "amd64")


@dataclass(frozen=True)
class HostFacts:
    """What the checks look at, read once from the running system (``read_facts``)."""

    euid: int
    machine: str
    programs: frozenset[str]  # of apt-get, dpkg, python3 found on PATH
    namespaces: frozenset[str]  # the entries of /proc/self/ns
    filesystems: frozenset[str]  # /proc/filesystems, plus loadable modules for them
    controllers: frozenset[str]  # cgroup controllers mounted in any hierarchy (v1 or v2)


def parse_filesystems(text: str) -> frozenset[str]:
    """The filesystem types of a /proc/filesystems (pure)."""
    return frozenset(line.split()[-1] for line in text.splitlines() if line.strip())


def mounted_controllers(mountinfo: str, read: dict[Path, str]) -> frozenset[str]:
    """Cgroup controllers from a mountinfo: v1 hierarchies name theirs in their options, a
    cgroup2 mount lists its own in ``cgroup.controllers`` (``read``: those files' text) (pure)."""
    found: set[str] = set()
    for hierarchy in parse_mountinfo(mountinfo):
        if hierarchy.fstype == "cgroup2":
            found.update(read.get(hierarchy.mountpoint / "cgroup.controllers", "").split())
        else:
            found.update(c for c in hierarchy.key.split(",") if c and not c.startswith("name="))
    return frozenset(found)


def problems(facts: HostFacts) -> list[str]:
    """Every reason this machine cannot run the local cluster, each naming what is missing and
    what to do; empty when it can (pure)."""
    found = []
    if facts.euid != 0:
        found.append(
            "not root: the local cluster makes network, mount and cgroup namespaces, mounts and "
            "cgroups, and runs containerd and kubelet; run make as root (e.g. sudo -E make up)"
        )
    if facts.machine not in MACHINES:
        found.append(f"the machine is {facts.machine}: the cluster's programs are built for x86-64")
    if not {"apt-get", "dpkg"} <= facts.programs:
        found.append(
            "no apt-get/dpkg: the node's packages (containerd, runc, CNI plugins, iptables, ipset) "
            "and the image tools come from Debian's archive; use Debian 12+ or Ubuntu 22.04+"
        )
    if missing := [n for n in NAMESPACES if n not in facts.namespaces]:
        found.append(
            f"the kernel lacks {_names(missing)} namespaces (no /proc/self/ns/<kind>): the node "
            "and its containers run in namespaces of their own (CONFIG_NAMESPACES and friends)"
        )
    if missing := [c for c in CONTROLLERS if c not in facts.controllers]:
        found.append(
            f"no {_names(missing)} cgroup controller mounted (cgroup v1 or v2 under "
            "/sys/fs/cgroup): kubelet and runc limit pods with them"
        )
    if missing := [f for f in FILESYSTEMS if f not in facts.filesystems]:
        found.append(
            f"the kernel has no {_names(missing)} filesystem (/proc/filesystems, modprobe "
            "overlay): containerd unpacks images with overlayfs"
        )
    return found


def _names(items: Iterable[str]) -> str:
    return ", ".join(items)


def _overlay_module() -> bool:
    """overlay built as a module that is not loaded yet still works: containerd loads it."""
    modules = Path("/lib/modules") / platform.release()
    return any(modules.glob("kernel/fs/overlayfs/overlay.ko*"))


def read_facts() -> HostFacts:
    mountinfo = Path("/proc/self/mountinfo").read_text()
    v2 = [h.mountpoint / "cgroup.controllers" for h in parse_mountinfo(mountinfo)
          if h.fstype == "cgroup2"]  # fmt: skip
    filesystems = set(parse_filesystems(Path("/proc/filesystems").read_text()))
    if _overlay_module():
        filesystems.add("overlay")
    ns = Path("/proc/self/ns")
    return HostFacts(
        euid=os.geteuid(),
        machine=platform.machine(),
        programs=frozenset(p for p in ("apt-get", "dpkg", "python3") if shutil.which(p)),
        namespaces=frozenset(e.name for e in ns.iterdir()) if ns.is_dir() else frozenset(),
        filesystems=frozenset(filesystems),
        controllers=mounted_controllers(mountinfo, {p: p.read_text() for p in v2 if p.is_file()}),
    )


def report(found: list[str]) -> str:
    """The message for a machine that cannot run the cluster (pure)."""
    lines = "\n".join(f"  - {p}" for p in found)
    return (
        "this machine cannot run the local cluster (make up, make demo, make test need root on "
        f"Debian/Ubuntu x86-64 with these kernel features):\n{lines}"
    )


def main() -> int:
    if found := problems(read_facts()):
        print(f"error: {report(found)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The namespaces one cluster lives in, made at start and removed, leaving nothing, at stop.

Every process of the cluster (control plane and node) runs inside them: a network namespace
(``netns.py``), a private mount namespace and a cgroup namespace held by a small process
(``nodefs.py``), and a cgroup per hierarchy (``cgroups.py``). Their names derive from the port
base and the run directory, so two checkouts' clusters on one machine never share one, and a
crashed cluster's leftovers are found again by the next start.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClusterError
from . import cgroups, netns
from .linux import Enter
from .nodefs import spec_for
from .processes import Managed

HOLDER = "namespaces"  # the process name (pid file, log) of the namespace holder


def cluster_name(run_dir: Path, port_base: int) -> str:
    """``paitient-<port base>-<6 hex of the run directory>`` (pure)."""
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:6]
    return f"paitient-{port_base}-{digest}"


@dataclass(frozen=True)
class ClusterNamespaces:
    name: str
    run_dir: Path

    @property
    def state_dir(self) -> Path:
        return self.run_dir / "namespaces"

    @property
    def holder(self) -> Managed:
        return Managed(HOLDER, self.run_dir)

    @property
    def netns_path(self) -> Path:
        return netns.path(self.name)

    def _cgroups(self) -> tuple[Path, ...]:
        try:
            return tuple(Path(p) for p in json.loads((self.state_dir / "cgroups.json").read_text()))
        except (OSError, ValueError):
            return ()

    def is_up(self) -> bool:
        return netns.exists(self.name) and self.holder.read_pid() is not None

    def create(self, timeout: float = 30.0) -> None:
        """Network namespace, cgroups, then the holder of the mount and cgroup namespaces."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        netns.create(self.name, netns.NodeNetwork())
        directories = cgroups.create(self.name)
        (self.state_dir / "cgroups.json").write_text(json.dumps([str(d) for d in directories]))
        spec = spec_for(self.state_dir, self.netns_path, directories, cgroups.hierarchies())
        spec.ready_file.unlink(missing_ok=True)
        spec_path = self.state_dir / "nodefs.json"
        spec.save(spec_path)
        self.holder.start(
            [sys.executable, "-m", "paitient_localcluster.host.nodefs", str(spec_path)]
        )
        deadline = time.monotonic() + timeout
        while not spec.ready_file.exists():
            self.holder.ensure_alive()
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the cluster's namespaces were not ready within {timeout:.0f} s:\n"
                    f"{self.holder.log_tail()}"
                )
            time.sleep(0.05)

    def enter(self, cwd: Path) -> Enter:
        """How a new process joins every namespace of the cluster."""
        pid = self.holder.read_pid()
        if pid is None:
            raise ClusterError("the cluster's namespaces are gone (their holder process exited)")
        return Enter(self.netns_path, pid, self._cgroups(), cwd)

    def kill_strays(self, spare: frozenset[int]) -> set[int]:
        """Kill every process in the cluster's cgroups but ``spare`` (and the holder): what
        containerd ran outlives it (shims, containers)."""
        holder = self.holder.read_pid()
        keep = spare | ({holder} if holder else set())
        return cgroups.kill_all(cgroups.find(self.name), spare=frozenset(keep))

    def destroy(self) -> list[str]:
        """Kill whatever is left inside (containers, shims, the holder), remove the cgroups and
        the network namespace; return what was removed. Safe to call when nothing exists."""
        removed = []
        self.holder.stop(timeout=5)
        directories = sorted(set(self._cgroups()) | set(cgroups.find(self.name)))
        killed = cgroups.kill_all(directories)
        if killed:
            removed.append(f"{len(killed)} processes left in the cluster's cgroups")
        left = cgroups.remove(directories)
        if left:
            raise ClusterError(f"cgroups still busy after stopping the cluster: {left}")
        if directories:
            removed.append(f"{len(directories)} cgroups")
        if netns.delete(self.name):
            removed.append(f"network namespace {self.name}")
        (self.state_dir / "cgroups.json").unlink(missing_ok=True)
        return removed

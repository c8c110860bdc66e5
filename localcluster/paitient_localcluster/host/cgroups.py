"""The node's cgroups: one directory per hierarchy, named after the cluster, holding every process
of the node and (through the node's cgroup namespace) every container runc makes.

Each directory is made below the cgroup the starting process is in, so nothing leaves the
accounting of whoever started the cluster. Stopping the cluster kills what is left in them (by
pid: only processes the cluster started can be there) and removes them bottom-up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_NOT_CONTROLLERS = {"rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "nsdelegate"}


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy: where it is and what it controls."""

    mountpoint: Path
    fstype: str  # cgroup (v1) or cgroup2
    options: str  # super options, as `mount -o` takes them (v1: the controllers or name=)

    @property
    def key(self) -> str:
        """What /proc/<pid>/cgroup calls this hierarchy: its controllers, or "" for cgroup2."""
        if self.fstype == "cgroup2":
            return ""
        return ",".join(o for o in self.options.split(",") if o not in _NOT_CONTROLLERS)


def parse_mountinfo(text: str) -> list[Hierarchy]:
    """The cgroup hierarchies in a /proc/<pid>/mountinfo (pure)."""
    found = []
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append(Hierarchy(Path(fields[4]), tail[0], tail[2]))
    return found


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup as hierarchy key -> path (pure)."""
    paths = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path
    return paths


def hierarchies() -> list[Hierarchy]:
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def create(name: str) -> tuple[Path, ...]:
    """Make ``name`` below this process's cgroup in every hierarchy; return the directories."""
    own = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
    made = []
    for hierarchy in hierarchies():
        parent = hierarchy.mountpoint / own.get(hierarchy.key, "/").lstrip("/")
        directory = parent / name
        directory.mkdir(exist_ok=True)
        if (directory / "cpuset.cpus").exists():
            # A new cpuset is empty, and no process can join an empty one.
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (directory / knob).write_text((parent / knob).read_text())
        made.append(directory)
    return tuple(made)


def find(name: str, max_depth: int = 4) -> list[Path]:
    """Every directory called ``name`` in any hierarchy (leftovers of a crashed cluster)."""
    found = []
    for hierarchy in hierarchies():
        found += [d for d in _walk(hierarchy.mountpoint, max_depth) if d.name == name]
    return found


def _walk(top: Path, depth: int) -> Iterator[Path]:
    with contextlib.suppress(OSError):
        for entry in os.scandir(top):
            if entry.is_dir(follow_symlinks=False):
                yield Path(entry.path)
                if depth > 1:
                    yield from _walk(Path(entry.path), depth - 1)


def _tree(directory: Path) -> list[Path]:
    """``directory`` and every cgroup below it, deepest first."""
    below = list(_walk(directory, 64))
    return sorted([directory, *below], key=lambda p: len(p.parts), reverse=True)


def pids(directories: Sequence[Path]) -> set[int]:
    """Every process in these cgroups or below them."""
    found: set[int] = set()
    for top in directories:
        for directory in _tree(top):
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
    return found


def kill_all(
    directories: Sequence[Path], timeout: float = 20.0, spare: frozenset[int] = frozenset()
) -> set[int]:
    """SIGKILL every process in the cgroups but ``spare`` until none is left; return the pids
    killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while (left := pids(directories) - spare) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        killed |= left
        time.sleep(0.1)
    return killed


def remove(directories: Sequence[Path], timeout: float = 10.0) -> list[Path]:
    """Remove the cgroups bottom-up (a cgroup goes once its last process has exited);
    return what could not be removed."""
    deadline = time.monotonic() + timeout
    left: list[Path] = []
    while True:
        left = []
        for top in directories:
            for directory in _tree(top):
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(directory)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)

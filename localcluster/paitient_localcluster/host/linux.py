"""The Linux namespace system calls the cluster needs, through ctypes (Python 3.11 has neither
``os.setns`` nor ``os.unshare``).

``Enter`` describes how a process joins the cluster: its cgroups, then its network, cgroup and
mount namespaces (``setns`` into a mount namespace needs a single-threaded caller).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_setns = _libc.setns
_setns.argtypes = (ctypes.c_int, ctypes.c_int)
_unshare = _libc.unshare
_unshare.argtypes = (ctypes.c_int,)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def setns(fd: int, nstype: int) -> None:
    """Move the calling thread into the namespace ``fd`` refers to."""
    _check(_setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    """Give the calling process new namespaces of the kinds in ``flags``."""
    _check(_unshare(flags), "unshare")


def call_in_netns(netns: Path, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread inside the network namespace ``netns`` and return what it
    returns (or raise what it raised): the sockets it opens belong to that namespace, while the
    rest of this process stays in its own (a network namespace is a per-thread attribute)."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            outcome.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="in-netns", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def join_cgroups(cgroups: Sequence[Path], pid: int = 0) -> None:
    """Put ``pid`` (0: the caller) into each cgroup directory, one per hierarchy."""
    for directory in cgroups:
        (directory / "cgroup.procs").write_text(f"{pid}\n")


@dataclass(frozen=True)
class Enter:
    """How a new process joins the cluster's cgroups and its network, cgroup and mount
    namespaces: ``argv(command)`` prefixes a command with the launcher (``enter.py``) that does
    so and then execs it. A launcher rather than ``preexec_fn``, which is unsafe in a process
    with threads (pytest's, the Kubernetes client's)."""

    netns: Path  # /run/netns/<name>
    holder_pid: int  # the process holding the node's mount and cgroup namespaces
    cgroups: tuple[Path, ...]
    cwd: Path

    def argv(self, command: Sequence[str]) -> list[str]:
        return [
            sys.executable, "-m", "paitient_localcluster.host.enter",
            "--netns", str(self.netns), "--holder", str(self.holder_pid),
            "--cwd", str(self.cwd), *[f"--cgroup={c}" for c in self.cgroups],
            "--", *command,
        ]  # fmt: skip

    def join(self) -> None:
        """Join, in the calling (single-threaded) process."""
        join_cgroups(self.cgroups)
        # The cgroup namespace first: entering the mount namespace changes what /proc shows.
        for path, kind in (
            (self.netns, CLONE_NEWNET),
            (Path(f"/proc/{self.holder_pid}/ns/cgroup"), CLONE_NEWCGROUP),
            (Path(f"/proc/{self.holder_pid}/ns/mnt"), CLONE_NEWNS),
        ):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, kind)
            finally:
                os.close(fd)
        # Entering a mount namespace resets the working directory to its root.
        os.chdir(self.cwd)

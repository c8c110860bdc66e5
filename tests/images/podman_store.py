"""One podman store per test session, shared by tests/images and tests/vllm, and the clean-up of
stores whose session died without removing its own.

Loading the 3 GB vllm-cpu archive costs minutes and 6.5 GB of disk: a store per folder did it
twice per session. The store lives in ``$TMPDIR/pytest-of-<user>/podman/s-*`` (short: podman
refuses a run root longer than 50 characters) and is removed when the session ends (containers, images, mounts, the directory: ``Podman.close``),
whether its tests passed or not. A session that could not clean up (killed, out of memory) holds
a file lock on its store no longer; the next session to start finds the lock free and removes
that store, its containers and mounts included.

Why not keep one store across sessions (images keyed by manifest digest)? Several checkouts of
this repository run sessions at once on one machine: a shared store would mean one libpod
database and lock set for all of them, each session's clean-up touching the others'
containers, and a store nobody owns after a crash. CI runs on a fresh machine, where it would
save nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tests.images.podman import Podman

OWNER_LOCK = "owner.lock"
STORE_PREFIX = "s-"


def stores_dir() -> Path:
    """Where every session's store lives (beside pytest's own temporary directories)."""
    return Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}" / "podman"


@contextlib.contextmanager
def _locked(path: Path, *, wait: bool = True) -> Iterator[IO[str] | None]:
    """An exclusive lock on ``path`` (None when ``wait`` is False and someone holds it)."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        yield handle


def remove_abandoned(root: Path) -> list[Path]:
    """Remove the stores under ``root`` whose session no longer holds their lock; returns them.
    Called with ``root``'s own lock held, so no store is being made meanwhile."""
    removed = []
    for store in sorted(root.glob(f"{STORE_PREFIX}*")):
        lock = store / OWNER_LOCK
        if not lock.is_file():  # died before it took its lock: nothing podman made is in it
            shutil.rmtree(store, ignore_errors=True)
            removed.append(store)
            continue
        with _locked(lock, wait=False) as held:
            if held is not None:  # its session is gone
                Podman(store).close()
                removed.append(store)
    return removed


@contextlib.contextmanager
def session_store(root: Path | None = None) -> Iterator[Podman]:
    """A podman of this session's own under ``root`` (``stores_dir()``), locked for as long as
    the session runs; abandoned stores there are removed first."""
    root = root or stores_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        remove_abandoned(root)
        store = Path(tempfile.mkdtemp(prefix=STORE_PREFIX, dir=root))
        owner = (store / OWNER_LOCK).open("a")
        fcntl.flock(owner, fcntl.LOCK_EX)  # released by the kernel if this process dies
    podman = Podman(store)
    try:
        yield podman
    finally:
        try:
            podman.close()  # the directory too, the lock file in it included
        finally:
            owner.close()

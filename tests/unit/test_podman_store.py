"""The session podman store's life: locked while its session lives, removed at its end, and
removed by the next session when its own died without cleaning up (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.images.podman_store import OWNER_LOCK, STORE_PREFIX, remove_abandoned, session_store

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys
from pathlib import Path
from tests.images.podman_store import session_store
with session_store(Path(sys.argv[1])) as podman:
    print(podman.home, flush=True)
    sys.stdin.read()
"""


def test_a_store_is_gone_after_its_session_and_others_are_left_alone(tmp_path: Path) -> None:
    other = tmp_path / f"{STORE_PREFIX}other"
    other.mkdir()
    (other / OWNER_LOCK).touch()  # no process holds it: abandoned
    with session_store(tmp_path) as podman:
        assert not other.exists(), "an abandoned store is removed when a session starts"
        assert podman.home.is_dir() and (podman.home / "storage.conf").is_file()
        mine = podman.home
        assert remove_abandoned(tmp_path) == [], "a live session's store is kept"
    assert not mine.exists()


def test_the_store_of_a_killed_session_is_removed_by_the_next(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        store = Path(child.stdout.readline().strip())
        assert store.is_dir()
        assert remove_abandoned(tmp_path) == [], "its session still holds the lock"
        os.kill(child.pid, signal.SIGKILL)  # no clean-up runs
        child.wait(timeout=30)
        assert store.is_dir()
        assert remove_abandoned(tmp_path) == [store]
        assert not store.exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_store_left_before_its_lock_was_taken_is_removed(tmp_path: Path) -> None:
    (tmp_path / f"{STORE_PREFIX}early").mkdir()
    assert remove_abandoned(tmp_path) == [tmp_path / f"{STORE_PREFIX}early"]

"""The image cache's prune: it deletes what no current key names, but spares what another
checkout built recently (it may be using it right now) and runs under the build lock."""

from __future__ import annotations

import os
import time
from pathlib import Path

from paitient_images.build import PRUNE_GRACE_S, Builder


def test_prune_keeps_what_is_used_and_what_is_recent(tmp_path: Path) -> None:
    builder = Builder(tmp_path)
    archives = tmp_path / "archives"
    used, recent, old = archives / "used.tar", archives / "recent.tar", archives / "old.tar"
    for path in (used, recent, old):
        path.write_bytes(b"x")
    long_ago = time.time() - PRUNE_GRACE_S - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(used, (long_ago, long_ago))
    (tmp_path / "tmp").mkdir()
    builder.used.add(used)

    builder.prune()

    assert used.exists(), "a current key's archive is kept, however old"
    assert recent.exists(), "another checkout's fresh archive is kept"
    assert not old.exists()
    assert not (tmp_path / "tmp").exists()

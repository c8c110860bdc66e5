"""Files out of a Go module's zip on the Go module proxy (CRDs of projects whose controllers
do not run here), checked against a pinned SHA-256 and cached like the binaries
(``<cache>/<name>-<version>/``, complete once its ``.complete`` stamp is written)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .versions import cache_dir


def module_files_directory(name: str, version: str) -> Path:
    return cache_dir() / f"{name}-{version}"


def fetch_module_files(
    name: str, module: str, version: str, zip_sha256: str, folder: str, files: Sequence[str]
) -> Path:
    """The directory holding ``files`` of ``folder`` in ``module@version``, downloaded and
    checked on first use."""
    target = module_files_directory(name, version)
    if (target / ".complete").is_file():
        return target
    proxy = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0].rstrip("/")
    if not proxy.startswith("https://"):
        proxy = "https://proxy.golang.org"
    url = f"{proxy}/{module}/@v/{version}.zip"
    with urllib.request.urlopen(url, timeout=120) as response:
        archive = response.read()
    digest = hashlib.sha256(archive).hexdigest()
    if digest != zip_sha256:
        raise RuntimeError(f"{url}: SHA-256 {digest}, expected {zip_sha256}")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    prefix = f"{module}@{version}/{folder.strip('/')}/"
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        for file in files:
            (staging / file).write_bytes(zipped.read(prefix + file))
    (staging / ".complete").write_text(version + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target

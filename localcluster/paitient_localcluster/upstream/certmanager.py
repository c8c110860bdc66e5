"""cert-manager's own CRDs, for the tests of the operator's cert-manager issuer.

They come from the release's Go module on the Go module proxy (``deploy/crds`` of
``github.com/cert-manager/cert-manager``), checked against a pinned SHA-256 of the module zip,
and are cached like the control-plane binaries (``<cache>/cert-manager-crds-<version>/``). The
API server then validates the Certificates the operator writes against cert-manager's real
schema. cert-manager's controllers, which sign them, are built from the same release's module
(``localcluster/gomod/certmanager``: the ``CERT_MANAGER_CONTROLLER`` component of
``versions.py``).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import Final

from .versions import CERT_MANAGER_VERSION, cache_dir

MODULE: Final = "github.com/cert-manager/cert-manager"
ZIP_SHA256: Final = "cfaf1fb53965a5fd60490861387b7dbf34cd40987c878a4f1e247f836eef4782"
CRD_FILES: Final = (
    "cert-manager.io_certificates.yaml",
    "cert-manager.io_certificaterequests.yaml",
    "cert-manager.io_issuers.yaml",
    "cert-manager.io_clusterissuers.yaml",
)


def crd_directory() -> Path:
    return cache_dir() / f"cert-manager-crds-{CERT_MANAGER_VERSION}"


def fetch_crds() -> Path:
    """The directory of the pinned CRDs, downloaded and checked on first use."""
    target = crd_directory()
    if (target / ".complete").is_file():
        return target
    proxy = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0].rstrip("/")
    if not proxy.startswith("https://"):
        proxy = "https://proxy.golang.org"
    url = f"{proxy}/{MODULE}/@v/{CERT_MANAGER_VERSION}.zip"
    with urllib.request.urlopen(url, timeout=120) as response:
        archive = response.read()
    digest = hashlib.sha256(archive).hexdigest()
    if digest != ZIP_SHA256:
        raise RuntimeError(f"{url}: SHA-256 {digest}, expected {ZIP_SHA256}")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    prefix = f"{MODULE}@{CERT_MANAGER_VERSION}/deploy/crds/"
    with zipfile.ZipFile(io.BytesIO(archive)) as module:
        for name in CRD_FILES:
            (staging / name).write_bytes(module.read(prefix + name))
    (staging / ".complete").write_text(CERT_MANAGER_VERSION + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target

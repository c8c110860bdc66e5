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

from pathlib import Path
from typing import Final

from .module_files import fetch_module_files, module_files_directory
from .versions import CERT_MANAGER_VERSION

MODULE: Final = "github.com/cert-manager/cert-manager"
ZIP_SHA256: Final = "cfaf1fb53965a5fd60490861387b7dbf34cd40987c878a4f1e247f836eef4782"
CRD_FILES: Final = (
    "cert-manager.io_certificates.yaml",
    "cert-manager.io_certificaterequests.yaml",
    "cert-manager.io_issuers.yaml",
    "cert-manager.io_clusterissuers.yaml",
)


def crd_directory() -> Path:
    return module_files_directory("cert-manager-crds", CERT_MANAGER_VERSION)


def fetch_crds() -> Path:
    """The directory of the pinned CRDs, downloaded and checked on first use."""
    return fetch_module_files(
        "cert-manager-crds", MODULE, CERT_MANAGER_VERSION, ZIP_SHA256, "deploy/crds", CRD_FILES
    )

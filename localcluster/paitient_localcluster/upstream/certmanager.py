"""cert-manager's own CRDs, for the tests of the operator's cert-manager issuer.

They come from the release's Go module on the Go module proxy (``deploy/crds`` of
``github.com/cert-manager/cert-manager``, ``crd_modules.CERT_MANAGER``), checked against a pinned
SHA-256 of the module zip, and cached like the control-plane binaries
(``<cache>/cert-manager-crds-<version>/``). The API server then validates the Certificates the
operator writes against cert-manager's real schema. cert-manager's controller itself is not run
here (its commands are not go-installable modules), so nothing signs those Certificates locally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from .crd_modules import CERT_MANAGER

CERT_MANAGER_VERSION: Final = CERT_MANAGER.version
CRD_FILES: Final = CERT_MANAGER.files


def crd_directory() -> Path:
    return CERT_MANAGER.cached()


def fetch_crds() -> Path:
    """The directory of the pinned CRDs, downloaded and checked on first use."""
    return CERT_MANAGER.fetch()

"""KEDA's own CRDs, for the tests of the ScaledObject the operator renders (``spec.autoscaling
.engine: keda``) and of its "only when KEDA is installed" rule.

They come from the release's Go module on the Go module proxy (``config/crd/bases`` of
``github.com/kedacore/keda/v2``), checked against a pinned SHA-256 of the module zip and cached
like cert-manager's (``<cache>/keda-crds-<version>/``). KEDA's operator itself does not run
here: the tests validate what the operator renders against KEDA's real schema, and install the
CRDs into the local cluster so the API server does the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from .module_files import fetch_module_files

KEDA_VERSION: Final = "v2.21.1"
MODULE: Final = "github.com/kedacore/keda/v2"
ZIP_SHA256: Final = "872fa4b9d4282969ece753727ca31a7a31eaf341a52fa0972148297521ca9a75"
SCALED_OBJECTS: Final = "keda.sh_scaledobjects.yaml"


def fetch_crds() -> Path:
    """The directory of the pinned ScaledObject CRD, downloaded and checked on first use."""
    return fetch_module_files(
        "keda-crds", MODULE, KEDA_VERSION, ZIP_SHA256, "config/crd/bases", (SCALED_OBJECTS,)
    )

"""KEDA's own CRDs, for the tests of the ScaledObject the operator renders (``spec.autoscaling
.engine: keda``) and of its "only when KEDA is installed" rule.

They come from the release's Go module on the Go module proxy (``config/crd/bases`` of
``github.com/kedacore/keda/v2``), checked against a pinned SHA-256 of the module zip and cached
like cert-manager's (``crd_modules.KEDA``). KEDA's operator itself does not run
here: the tests validate what the operator renders against KEDA's real schema, and install the
CRDs into the local cluster so the API server does the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from .crd_modules import KEDA

KEDA_VERSION: Final = KEDA.version
SCALED_OBJECTS: Final = KEDA.files[0]


def fetch_crds() -> Path:
    """The directory of the pinned ScaledObject CRD, downloaded and checked on first use."""
    return KEDA.fetch()

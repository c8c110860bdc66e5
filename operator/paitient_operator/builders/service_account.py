"""The ServiceAccount the model pods run as; its token is never mounted automatically."""

from __future__ import annotations

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.builders.metadata import Manifest, object_meta


def build_service_account(md: ModelDeployment) -> Manifest:
    """ServiceAccount named after ``md``; only the gateway gets a (projected) token for it."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(md),
        "automountServiceAccountToken": False,
    }

"""The PersistentVolumeClaim caching a model's weights (``--download-dir``, HF and vLLM caches)."""

from __future__ import annotations

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.builders.metadata import Manifest, object_meta
from paitient_operator.config import OperatorConfig


def build_pvc(md: ModelDeployment, config: OperatorConfig, storage_class: str) -> Manifest:
    """The model-cache PVC. ``storage_class`` is the already-resolved, encrypted class
    (``storage_policy.resolve_storage_class``): it is always explicit, never left to the
    cluster default."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_meta(md),
        "spec": {
            "accessModes": [config.model_cache_access_mode],
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": md.spec.storage.size}},
        },
    }

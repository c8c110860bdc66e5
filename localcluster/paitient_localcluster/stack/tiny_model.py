"""The tiny model delivered as a user delivers an offline model: a PersistentVolumeClaim filled by
a Job from the tiny-model image (its entrypoint copies ``/model`` to ``/target/tiny-llama``), so
a ModelDeployment can say ``model.uri: pvc://tiny-model/tiny-llama``. Used by ``make demo``, the
integration tests and the model-pod benchmark."""

from __future__ import annotations

import time
from typing import Any, Final

from paitient_common.kubeapi import Kube
from paitient_images import image

from ..errors import ClusterError

CLAIM: Final = "tiny-model"
JOB: Final = "copy-tiny-model"
MODEL_URI: Final = f"pvc://{CLAIM}/tiny-llama"
# What Pod Security ``restricted`` asks of every container.
RESTRICTED: Final[dict[str, Any]] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def claim_manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": CLAIM, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "encrypted-local",
                 "resources": {"requests": {"storage": "1Gi"}}},
    }  # fmt: skip


def job_manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": JOB, "namespace": namespace},
        "spec": {"backoffLimit": 2, "template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "copy", "image": image("tiny-model").reference,
                "imagePullPolicy": "Never", "securityContext": RESTRICTED,
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                              "limits": {"memory": "256Mi"}},
                "volumeMounts": [{"name": "target", "mountPath": "/target"}],
            }],
            "volumes": [{"name": "target", "persistentVolumeClaim": {"claimName": CLAIM}}],
        }}},
    }  # fmt: skip


def fill_model_claim(kube: Kube, namespace: str, timeout: float = 180) -> None:
    """Create the claim and the Job (unless they exist: a rerun is harmless) and wait until the
    Job has copied the model; ClusterError when it fails or takes longer than ``timeout``."""
    for manifest in (claim_manifest(namespace), job_manifest(namespace)):
        meta = manifest["metadata"]
        if (
            kube.get(manifest["apiVersion"], manifest["kind"], meta["name"], namespace=namespace)
            is None
        ):
            kube.create(manifest)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (kube.get("batch/v1", "Job", JOB, namespace=namespace) or {}).get("status") or {}
        if status.get("succeeded"):
            return
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Failed" and condition.get("status") == "True":
                raise ClusterError(
                    f"the Job {namespace}/{JOB} failed: {condition.get('message', '')}"
                )
        time.sleep(1)
    raise ClusterError(f"the Job {namespace}/{JOB} did not copy the tiny model in {timeout:.0f} s")

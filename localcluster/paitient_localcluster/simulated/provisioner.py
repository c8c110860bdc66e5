"""A stand-in volume provisioner for the local cluster, which has no storage at all.

Real clusters provision a PersistentVolume for each claim through a CSI driver. Here, for claims
whose StorageClass names ``paitient.ai/local-standin`` as its provisioner, this process creates a
directory under the cluster's run directory and a ``hostPath`` PersistentVolume of it, pre-bound
to the claim (what an external provisioner does), so the controller manager binds them and pods
on the real node mount them; a deleted claim takes its volume and directory with it. The
directories are writable by every uid (the pods' users differ; a hostPath volume gets no
``fsGroup``): this is the test cluster's stand-in, not storage. Two classes are installed:
``encrypted-local`` (labelled ``paitient.ai/encrypted: "true"``; nothing is encrypted, it stands
for a class that would be) and ``plain-local`` (not encrypted, for refusal tests).

Run as ``python -m paitient_localcluster.simulated.provisioner <kubeconfig> <volumes dir>``; the cluster
starts it.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

PROVISIONER = "paitient.ai/local-standin"


def storage_classes() -> list[dict[str, Any]]:
    """The StorageClasses of the local cluster (pure)."""

    def sc(name: str, encrypted: bool) -> dict[str, Any]:
        labels = {"paitient.ai/encrypted": "true"} if encrypted else {}
        return {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name, "labels": labels},
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }

    return [sc("encrypted-local", True), sc("plain-local", False)]


def volume_name(claim: dict[str, Any]) -> str:
    return f"pv-{claim['metadata']['uid']}"


def build_volume(claim: dict[str, Any], directory: Path) -> dict[str, Any]:
    """A PersistentVolume of ``directory``, pre-bound to ``claim`` (pure)."""
    meta, spec = claim["metadata"], claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(claim),
            "labels": {"paitient.ai/standin-volume": "true"},
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": spec["storageClassName"],
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {"path": str(directory), "type": "Directory"},
        },
    }


def run(kubeconfig: str, volumes: Path) -> None:
    api = config.new_client_from_config(config_file=kubeconfig)
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    for sc in storage_classes():
        try:
            storage.create_storage_class(sc)
        except ApiException as exc:
            if exc.status != 409:
                raise
    ours = {sc["metadata"]["name"] for sc in storage_classes()}
    while True:
        try:
            _watch_claims(api, core, ours, volumes)
        except Exception as exc:  # keep serving: the API server may be restarting
            print(f"provisioner: {exc}; retrying", file=sys.stderr, flush=True)
            time.sleep(1)


def _watch_claims(
    api: client.ApiClient, core: client.CoreV1Api, ours: set[str], volumes: Path
) -> None:
    stream = watch.Watch().stream(
        core.list_persistent_volume_claim_for_all_namespaces, timeout_seconds=300
    )
    for event in stream:
        claim = api.sanitize_for_serialization(event["object"])
        spec, status = claim.get("spec", {}), claim.get("status", {})
        if spec.get("storageClassName") not in ours:
            continue
        directory = volumes / volume_name(claim)
        if event["type"] == "DELETED":
            _delete_volume(core, volume_name(claim), directory)
            continue
        if spec.get("volumeName") or status.get("phase") not in (None, "Pending"):
            continue
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)  # see the module docstring
        try:
            core.create_persistent_volume(build_volume(claim, directory))
        except ApiException as exc:
            if exc.status != 409:
                raise


def _delete_volume(core: client.CoreV1Api, name: str, directory: Path) -> None:
    try:
        core.delete_persistent_volume(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    run(sys.argv[1], Path(sys.argv[2]))

"""A stand-in volume provisioner for the local cluster, which has no storage at all.

Real clusters provision a PersistentVolume for each claim through a CSI driver. Here, for claims
whose StorageClass names ``paitient.ai/local-standin`` as its provisioner, this process creates a
PersistentVolume pre-bound to the claim (what an external provisioner does), so the controller
manager binds them and the scheduler can place pods that use the claim. Nothing is stored: KWOK
never runs containers. Two classes are installed: ``encrypted-local`` (labelled
``paitient.ai/encrypted: "true"``) and ``plain-local`` (not encrypted, for refusal tests).

Run as ``python -m paitient_localcluster.provisioner <kubeconfig>``; the cluster starts it.
"""

from __future__ import annotations

import sys
import time
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


def build_volume(claim: dict[str, Any]) -> dict[str, Any]:
    """A PersistentVolume pre-bound to ``claim`` (pure)."""
    meta, spec = claim["metadata"], claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pv-{meta['uid']}",
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
            # Never mounted: KWOK does not run containers.
            "hostPath": {"path": f"/nonexistent/paitient-standin/{meta['uid']}"},
        },
    }


def run(kubeconfig: str) -> None:
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
            _watch_claims(api, core, ours)
        except Exception as exc:  # keep serving: the API server may be restarting
            print(f"provisioner: {exc}; retrying", file=sys.stderr, flush=True)
            time.sleep(1)


def _watch_claims(api: client.ApiClient, core: client.CoreV1Api, ours: set[str]) -> None:
    stream = watch.Watch().stream(
        core.list_persistent_volume_claim_for_all_namespaces, timeout_seconds=300
    )
    for event in stream:
        claim = api.sanitize_for_serialization(event["object"])
        if event["type"] == "DELETED":
            continue
        spec, status = claim.get("spec", {}), claim.get("status", {})
        if spec.get("storageClassName") not in ours or spec.get("volumeName"):
            continue
        if status.get("phase") not in (None, "Pending"):
            continue
        try:
            core.create_persistent_volume(build_volume(claim))
        except ApiException as exc:
            if exc.status != 409:
                raise


if __name__ == "__main__":
    run(sys.argv[1])

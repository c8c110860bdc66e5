"""The stand-in provisioner's StorageClasses and volumes, as data."""

from __future__ import annotations

from pathlib import Path

from paitient_localcluster.simulated.provisioner import PROVISIONER, build_volume, storage_classes


def test_volume_is_pre_bound_to_its_claim() -> None:
    claim = {
        "metadata": {"name": "cache", "namespace": "t", "uid": "u-1"},
        "spec": {
            "storageClassName": "encrypted-local",
            "resources": {"requests": {"storage": "5Gi"}},
        },
    }
    pv = build_volume(claim, Path("/r/volumes/pv-u-1"))
    assert pv["spec"]["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "t",
        "name": "cache",
        "uid": "u-1",
    }
    assert pv["spec"]["capacity"] == {"storage": "5Gi"}
    assert pv["spec"]["storageClassName"] == "encrypted-local"
    assert pv["spec"]["hostPath"] == {"path": "/r/volumes/pv-u-1", "type": "Directory"}


def test_only_the_encrypted_class_is_labelled_encrypted() -> None:
    labels = {sc["metadata"]["name"]: sc["metadata"]["labels"] for sc in storage_classes()}
    assert labels == {"encrypted-local": {"paitient.ai/encrypted": "true"}, "plain-local": {}}
    assert {sc["provisioner"] for sc in storage_classes()} == {PROVISIONER}

"""Audit-log reading and the stand-in provisioner's volumes, as data."""

from __future__ import annotations

import json
from pathlib import Path

from paitient_localcluster.controlplane.audit import POLICY, log_size, read_events, writes_by
from paitient_localcluster.simulated.provisioner import PROVISIONER, build_volume, storage_classes


def _event(user: str, verb: str, stage: str = "ResponseComplete") -> str:
    return json.dumps(
        {
            "stage": stage,
            "verb": verb,
            "user": {"username": user},
            "objectRef": {"resource": "deployments", "namespace": "ns", "name": "d"},
            "responseStatus": {"code": 200},
        }
    )


def test_writes_are_counted_per_user_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(_event("paitient-operator", "patch") + "\n")
    offset = log_size(log)
    with log.open("a") as fh:
        for line in (
            _event("paitient-operator", "get"),
            _event("paitient-operator", "create"),
            _event("paitient-operator", "create", stage="ResponseStarted"),
            _event("someone-else", "delete"),
            "not json",
        ):
            fh.write(line + "\n")
    writes = writes_by(read_events(log, offset), "paitient-operator")
    assert [(w.verb, w.resource) for w in writes] == [("create", "deployments")]


def test_policy_leaves_out_the_control_plane_and_simulated_infrastructure() -> None:
    silenced = {u for r in POLICY["rules"] if r["level"] == "None" for u in r.get("users", [])}
    assert {"system:kube-controller-manager", "system:kube-scheduler", "paitient-kwok"} <= silenced
    assert POLICY["rules"][-1] == {"level": "Metadata"}


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

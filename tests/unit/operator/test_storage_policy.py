"""Model caches land only on StorageClasses the operator knows to be encrypted."""

from __future__ import annotations

from typing import Any

import pytest

from paitient_operator.config import OperatorConfig
from paitient_operator.errors import StorageNotEncrypted
from paitient_operator.storage_policy import cluster_default, resolve_storage_class


def sc(name: str, *, encrypted: bool = False, default: bool = False,
       created: str = "2025-01-01T00:00:00Z") -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if encrypted:
        meta["labels"] = {"paitient.ai/encrypted": "true"}
    if default:
        meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta}


CLASSES = [sc("encrypted-local", encrypted=True), sc("plain-local"), sc("listed")]
POLICY = OperatorConfig.model_validate({"encryptedStorageClasses": ["listed"]})


def test_requested_labelled_class_is_accepted() -> None:
    assert resolve_storage_class("encrypted-local", CLASSES, POLICY) == "encrypted-local"


def test_requested_class_listed_in_config_is_accepted() -> None:
    assert resolve_storage_class("listed", CLASSES, POLICY) == "listed"


def test_requested_plain_class_is_refused_with_choices() -> None:
    with pytest.raises(StorageNotEncrypted, match="not known to be encrypted") as info:
        resolve_storage_class("plain-local", CLASSES, POLICY)
    assert "encrypted-local, listed" in str(info.value)
    assert info.value.reason == "StorageNotEncrypted"


def test_requested_missing_class_is_refused() -> None:
    with pytest.raises(StorageNotEncrypted, match="does not exist"):
        resolve_storage_class("nope", CLASSES, POLICY)


def test_label_must_say_true() -> None:
    odd = sc("odd")
    odd["metadata"]["labels"] = {"paitient.ai/encrypted": "yes"}
    with pytest.raises(StorageNotEncrypted):
        resolve_storage_class("odd", [odd], OperatorConfig())


def test_config_default_is_used_when_none_requested() -> None:
    config = OperatorConfig.model_validate({"defaultStorageClass": "encrypted-local"})
    assert resolve_storage_class(None, CLASSES, config) == "encrypted-local"


def test_config_default_must_itself_be_encrypted() -> None:
    config = OperatorConfig.model_validate({"defaultStorageClass": "plain-local"})
    with pytest.raises(StorageNotEncrypted, match="defaultStorageClass"):
        resolve_storage_class(None, CLASSES, config)


def test_encrypted_cluster_default_is_used() -> None:
    classes = [sc("encrypted-local", encrypted=True, default=True), sc("plain-local")]
    assert resolve_storage_class(None, classes, OperatorConfig()) == "encrypted-local"


def test_plain_cluster_default_is_refused() -> None:
    classes = [sc("encrypted-local", encrypted=True), sc("plain-local", default=True)]
    with pytest.raises(StorageNotEncrypted, match="cluster default 'plain-local'"):
        resolve_storage_class(None, classes, OperatorConfig())


def test_no_default_at_all_is_refused() -> None:
    with pytest.raises(StorageNotEncrypted, match="no default StorageClass"):
        resolve_storage_class(None, [sc("plain-local")], OperatorConfig())


def test_newest_of_several_defaults_wins() -> None:
    classes = [
        sc("old", default=True, created="2024-01-01T00:00:00Z"),
        sc("new", default=True, created="2025-01-01T00:00:00Z"),
    ]
    assert cluster_default(classes) == "new"

"""Which StorageClass a model cache may use: only one the operator knows to be encrypted.

A class counts as encrypted when the operator's configuration lists it, or when the cluster
admin labelled it ``paitient.ai/encrypted: "true"``. The result is always an explicit class
name, so the PVC never falls to whatever the cluster default becomes later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from paitient_operator.config import OperatorConfig
from paitient_operator.errors import StorageNotEncrypted

ENCRYPTED_LABEL: Final = "paitient.ai/encrypted"
DEFAULT_CLASS_ANNOTATIONS: Final = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def _meta(storage_class: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = storage_class.get("metadata") or {}
    return meta if isinstance(meta, Mapping) else {}


def is_encrypted(
    name: str, storage_classes: Sequence[Mapping[str, Any]], config: OperatorConfig
) -> bool:
    """True if policy (config list) or the class's own label says ``name`` encrypts at rest."""
    if name in config.encrypted_storage_classes:
        return True
    for sc in storage_classes:
        meta = _meta(sc)
        if meta.get("name") == name:
            return (meta.get("labels") or {}).get(ENCRYPTED_LABEL) == "true"
    return False


def cluster_default(storage_classes: Sequence[Mapping[str, Any]]) -> str | None:
    """The cluster's default StorageClass; with several, the newest, as the API server picks."""
    defaults = [
        _meta(sc)
        for sc in storage_classes
        if any(
            (_meta(sc).get("annotations") or {}).get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS
        )
    ]
    if not defaults:
        return None
    newest = max(defaults, key=lambda m: (str(m.get("creationTimestamp") or ""), m.get("name")))
    name = newest.get("name")
    return str(name) if name else None


def _known_encrypted(
    storage_classes: Sequence[Mapping[str, Any]], config: OperatorConfig
) -> list[str]:
    names = {str(_meta(sc).get("name")) for sc in storage_classes if _meta(sc).get("name")}
    names |= set(config.encrypted_storage_classes)
    return sorted(n for n in names if is_encrypted(n, storage_classes, config))


def resolve_storage_class(
    requested: str | None,
    storage_classes: Sequence[Mapping[str, Any]],
    config: OperatorConfig,
) -> str:
    """The class for a model cache, or ``StorageNotEncrypted`` saying what to set instead.

    ``requested`` is ``spec.storage.storageClassName``; ``storage_classes`` the cluster's
    StorageClass objects (dicts) as listed by the handler.
    """
    choices = _known_encrypted(storage_classes, config)
    hint = (
        f"use one of: {', '.join(choices)}"
        if choices
        else "no StorageClass is known to be encrypted: list one in the operator's "
        "encryptedStorageClasses or label it paitient.ai/encrypted=true"
    )

    if requested:
        if is_encrypted(requested, storage_classes, config):
            return requested
        exists = any(_meta(sc).get("name") == requested for sc in storage_classes)
        what = "is not known to be encrypted" if exists else "does not exist"
        raise StorageNotEncrypted(
            f"storageClassName {requested!r} {what}; model weights must rest on encrypted "
            f"storage ({hint})"
        )

    if config.default_storage_class:
        if is_encrypted(config.default_storage_class, storage_classes, config):
            return config.default_storage_class
        raise StorageNotEncrypted(
            f"the operator's defaultStorageClass {config.default_storage_class!r} is not known "
            f"to be encrypted; set spec.storage.storageClassName ({hint})"
        )

    default = cluster_default(storage_classes)
    if default is not None and is_encrypted(default, storage_classes, config):
        return default
    why = (
        f"the cluster default {default!r} is not known to be encrypted"
        if default
        else "the cluster has no default StorageClass"
    )
    raise StorageNotEncrypted(
        f"no storageClassName given and {why}; set spec.storage.storageClassName ({hint})"
    )

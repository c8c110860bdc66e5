"""Keep an owned child object equal to what a builder rendered, writing only when it differs.

Level-based: the live object is compared with the desired one; a resync of an unchanged resource
reads and writes nothing else. "Equal" means every field the builder sets has the same value live
(``is_subset``); fields the API server defaults or other controllers add are left alone, so there
is no fight over them. A child edited or deleted by hand is put back.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from paitient_common.kubeapi import Kube, KubeError, Obj

Outcome = Literal["created", "updated", "unchanged"]


def owner_reference(owner: Obj) -> Obj:
    """A controller reference to ``owner``, so Kubernetes garbage-collects the child with it."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def adopt(child: Obj, owner: Obj) -> Obj:
    """A copy of ``child`` in the owner's namespace with the owner's controller reference."""
    adopted = copy.deepcopy(child)
    meta = adopted.setdefault("metadata", {})
    namespace = owner["metadata"].get("namespace")
    if namespace:
        meta["namespace"] = namespace
    meta["ownerReferences"] = [owner_reference(owner)]
    return adopted


def is_subset(desired: Any, live: Any) -> bool:
    """True if every value ``desired`` sets is the same in ``live`` (lists: same length, and
    each element a subset of the element at the same place)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and is_subset(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(is_subset(d, v) for d, v in zip(desired, live, strict=True))
        )
    return bool(desired == live)


def sync_child(
    kube: Kube, desired: Obj, cached: Obj | Literal[False] | None = False
) -> tuple[Outcome, Obj]:
    """Create ``desired`` or merge-patch the live object to it; no write when it matches.

    ``cached`` is the live object as a watch cache last saw it (None: absent), read instead of
    a GET. A stale cache costs at most a needless patch, or a create answered 409, after which
    the object is read from the API."""
    meta = desired["metadata"]
    api_version, kind, name = desired["apiVersion"], desired["kind"], meta["name"]
    namespace = meta.get("namespace")
    live = kube.get(api_version, kind, name, namespace=namespace) if cached is False else cached
    if live is None:
        try:
            return "created", kube.create(desired)
        except KubeError as exc:
            if exc.status != 409:
                raise
            live = kube.get(api_version, kind, name, namespace=namespace)
            if live is None:
                raise
    comparable = {k: v for k, v in desired.items() if k != "status"}
    if is_subset(comparable, live):
        return "unchanged", live
    patch = {k: v for k, v in comparable.items() if k not in ("apiVersion", "kind")}
    patched = kube.patch(api_version, kind, name, patch, namespace=namespace)
    return "updated", patched

"""Keep an owned child object as a builder rendered it, by Server-Side Apply, writing only when
an apply would change something.

Every child is applied as field manager ``paitient-operator`` with ``force``: the operator is
the authority on the fields it renders, so a field another writer took (``kubectl edit``, a
merge patch) is taken back rather than reported as a conflict. Fields it does not render are
never sent, so what others add beside them stays: a sidecar container, a volume, an env var, a
label (lists of containers, volumes, env, ports are merged by their keys).

"Unchanged" is judged the way the API server would: the child carries the hash of the rendering
last applied (``paitient.ai/spec-hash``), and the operator's field set (``managedFields``) still
holds every field of it, so no other writer has changed or removed one since. Mutating
admission (a webhook or MutatingAdmissionPolicy) that edits the operator's own write, e.g. adds
a toleration to the atomic tolerations list, is part of that write: it is not a difference, so
it stays and a resync writes nothing. See docs/operator.md, "How children are written".
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Final, Literal

from paitient_common.kubeapi import Kube, Obj
from paitient_operator.builders.metadata import SPEC_HASH_ANNOTATION, with_spec_hash
from paitient_operator.ownership import covers, owned_fields, owns, recorded_part

Outcome = Literal["created", "updated", "unchanged"]

FIELD_MANAGER: Final = "paitient-operator"

# Atomic lists other writers may add to: the operator needs its entries in them, not the list.
# While another writer holds such a list and it has every entry the operator renders, the
# operator leaves it out of its apply instead of taking the list back (which would drop the
# other writer's entries and start a tug of war). Everything else atomic that the operator
# renders (args, NetworkPolicy rules, RoleBinding subjects) is its contract and is taken back.
SHARED_LISTS: Final[dict[tuple[str, str], tuple[tuple[str, ...], ...]]] = {
    ("apps/v1", "Deployment"): (("spec", "template", "spec", "tolerations"),),
}

# Fields the operator stops rendering when another controller takes them over: replicas, once
# an autoscaler targets the Deployment. Released while the operator alone holds it, the field
# would be reset by the API server (replicas to 1: a serving model scaled down) before the
# autoscaler writes it; so the operator applies the live value until the autoscaler's first
# write takes the field over.
HANDED_OVER: Final[dict[tuple[str, str], tuple[tuple[str, ...], ...]]] = {
    ("apps/v1", "Deployment"): (("spec", "replicas"),),
}


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


def applied_config(desired: Obj, live: Obj | None) -> Obj:
    """What to apply for ``desired``: no status (a subresource), the hash of this rendering,
    no shared list that another writer holds with every entry of ours in it, and the live value
    of a field being handed over that the operator still holds."""
    applied = with_spec_hash({k: v for k, v in desired.items() if k != "status"})
    if live is None:
        return applied
    kind = (desired["apiVersion"], desired["kind"])
    ours = owned_fields(live, FIELD_MANAGER, desired["apiVersion"])
    for path in SHARED_LISTS.get(kind, ()):
        entries = _at(applied, path)
        if not isinstance(entries, list) or owns(ours, path):
            continue
        present = _at(live, path)
        if isinstance(present, list) and all(entry in present for entry in entries):
            _drop(applied, path)
    for path in HANDED_OVER.get(kind, ()):
        present = _at(live, path)
        if _at(applied, path) is None and present is not None and owns(ours, path):
            _put(applied, path, present)
    return applied


def is_current(applied: Obj, live: Obj) -> bool:
    """True if applying ``applied`` would change nothing the operator owns on ``live``: the
    same rendering was applied last, and no other writer has taken a field of it since."""
    ours = owned_fields(live, FIELD_MANAGER, applied["apiVersion"])
    if ours is None:
        return False  # never applied here (or written by an operator older than apply)
    same_rendering = _spec_hash(live) == _spec_hash(applied)
    return same_rendering and covers(ours, recorded_part(applied))


def sync_child(
    kube: Kube, desired: Obj, cached: Obj | Literal[False] | None = False
) -> tuple[Outcome, Obj]:
    """Apply ``desired`` unless the live object is already what that apply would make.

    ``cached`` is the live object as a watch cache last saw it (None: absent), read instead of
    a GET. A stale cache costs at most a needless apply: an apply creates or updates alike."""
    meta = desired["metadata"]
    api_version, kind, name = desired["apiVersion"], desired["kind"], meta["name"]
    live = (
        kube.get(api_version, kind, name, namespace=meta.get("namespace"))
        if cached is False
        else cached
    )
    applied = applied_config(desired, live)
    if live is not None and is_current(applied, live):
        return "unchanged", live
    stored = kube.apply(applied, field_manager=FIELD_MANAGER, force=True)
    return ("created" if live is None else "updated"), stored


def _spec_hash(obj: Obj) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(SPEC_HASH_ANNOTATION)
    return str(value) if value is not None else None


def _at(obj: Obj, path: Sequence[str]) -> Any:
    node: Any = obj
    for name in path:
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return node


def _drop(obj: Obj, path: Sequence[str]) -> None:
    parent = _at(obj, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _put(obj: Obj, path: Sequence[str], value: Any) -> None:
    parent = _at(obj, path[:-1])
    if isinstance(parent, dict):
        parent[path[-1]] = value

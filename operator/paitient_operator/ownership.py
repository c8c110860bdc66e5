"""What a field manager owns on a live object, as its ``managedFields`` entry records it.

Server-Side Apply keeps, per manager, the set of fields it set, as a trie (format FieldsV1):
``f:<name>`` a field, ``k:<key fields as JSON>`` an entry of a list merged by key (containers,
env, volumes, ports), ``v:<JSON>`` an entry of a set, ``.`` the node itself; a node without
children holds all of its value (a leaf, an atomic list such as tolerations or args, an atomic
map). A writer that changes or removes a field takes it out of every other manager's set; what
a writer adds beside it (a sidecar container, an env var, a label) never enters it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from paitient_common.kubeapi import Obj

# metadata the API server keeps out of every manager's set (it identifies the object).
UNRECORDED_METADATA = frozenset(
    {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp"}
)


def owned_fields(live: Obj, manager: str, api_version: str) -> Obj | None:
    """The fields ``manager`` set by Apply on the object itself (not on a subresource such as
    status), in ``api_version``; None when it has applied nothing there."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if (
            entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
            and entry.get("apiVersion") == api_version
        ):
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, dict) else {}
    return None


def recorded_part(obj: Obj) -> Obj:
    """``obj`` without what no field set records: apiVersion, kind and the identifying
    metadata."""
    part = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if isinstance(part.get("metadata"), dict):
        part["metadata"] = {
            k: v for k, v in part["metadata"].items() if k not in UNRECORDED_METADATA
        }
    return part


def covers(fields: Obj, value: Any) -> bool:
    """True if the field set ``fields`` holds every field of ``value``, as an apply of ``value``
    records them: map fields by name, list entries by their merge key (or value, in a set);
    a node without children holds all of its value."""
    if not fields:
        return True
    if isinstance(value, dict):
        return all(_holds(fields.get(f"f:{name}"), item) for name, item in value.items())
    if isinstance(value, list):
        entries = [(k, sub) for k, sub in fields.items() if k.startswith(("k:", "v:"))]
        return all(
            any(_is_entry(key, item) and covers(sub, item) for key, sub in entries)
            for item in value
        )
    return False  # a scalar recorded with children: not what an apply of it records


def owns(fields: Obj | None, path: Sequence[str]) -> bool:
    """True if ``fields`` holds the field at ``path`` (field names from the object's root),
    itself or through an ancestor held whole."""
    if fields is None:
        return False
    node = fields
    for name in path:
        child = node.get(f"f:{name}")
        if child is None:
            return False
        if not child:
            return True
        node = child
    return True


def _holds(fields: Obj | None, value: Any) -> bool:
    if value is None or value in ([], {}):
        return True  # nothing to own: the API server may drop an empty value before recording
    return fields is not None and covers(fields, value)


def _is_entry(key: str, item: Any) -> bool:
    """True if the list entry ``item`` is the one the path element ``key`` names. A key field
    the entry leaves out was defaulted by the API server (a port's protocol): not compared."""
    decoded = json.loads(key[2:])
    if key.startswith("v:"):
        return bool(decoded == item)
    if not isinstance(item, dict) or not isinstance(decoded, dict):
        return False
    given = [name for name in decoded if name in item]
    return bool(given) and all(item[name] == decoded[name] for name in given)

"""An in-memory stand-in for ``Kube`` with get, create, merge-patch and Server-Side Apply (which
records the applier's managedFields, as ``sync_child`` reads them): unit tests of our own logic
only, what is written and when."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from paitient_common.kubeapi import KubeError, Obj
from tests.unit.operator.test_sync_child import field_set

Key = tuple[str, str, str | None, str]


def _merge(live: Obj, patch: Obj) -> Obj:
    for key, value in patch.items():
        if value is None:
            live.pop(key, None)
        elif isinstance(value, dict) and isinstance(live.get(key), dict):
            _merge(live[key], value)
        else:
            live[key] = copy.deepcopy(value)
    return live


@dataclass
class MemoryKube:
    objects: dict[Key, Obj] = field(default_factory=dict)
    writes: list[tuple[str, str, str]] = field(default_factory=list)  # (verb, kind, name)

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        found = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise KubeError(409, "AlreadyExists", f"{obj['kind']} {meta['name']} exists")
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = "1"
        self.objects[key] = stored
        self.writes.append(("create", obj["kind"], meta["name"]))
        return copy.deepcopy(stored)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Obj,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        key = (api_version, kind, namespace, name)
        if key not in self.objects:
            raise KubeError(404, "NotFound", f"{kind} {name} not found")
        live = _merge(self.objects[key], {k: v for k, v in patch.items() if k != "metadata"})
        meta = {k: v for k, v in (patch.get("metadata") or {}).items() if k != "resourceVersion"}
        _merge(live["metadata"], meta)
        live["metadata"]["resourceVersion"] = str(int(live["metadata"]["resourceVersion"]) + 1)
        self.writes.append(("patch", kind, name))
        return copy.deepcopy(live)

    def apply(self, obj: Obj, *, field_manager: str, force: bool = False) -> Obj:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        previous = self.objects.get(key)
        stored = _merge(copy.deepcopy(previous) if previous else {}, obj)
        version = int((previous or {}).get("metadata", {}).get("resourceVersion", "0")) + 1
        recorded = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        recorded["metadata"] = {k: v for k, v in meta.items() if k not in ("name", "namespace")}
        others = [
            e for e in ((previous or {}).get("metadata") or {}).get("managedFields", [])
            if e["manager"] != field_manager
        ]  # fmt: skip
        mine = {"manager": field_manager, "operation": "Apply", "apiVersion": obj["apiVersion"],
                "fieldsType": "FieldsV1", "fieldsV1": field_set(recorded)}  # fmt: skip
        stored["metadata"].update(resourceVersion=str(version), managedFields=[*others, mine])
        self.objects[key] = stored
        self.writes.append(("apply", obj["kind"], meta["name"]))
        return copy.deepcopy(stored)

    def list(self, api_version: str, kind: str, **_: Any) -> list[Obj]:
        return [copy.deepcopy(o) for k, o in self.objects.items() if k[:2] == (api_version, kind)]

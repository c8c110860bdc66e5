"""What a cache keeps of each object (pure): enough for the reconcilers, not a byte more.

A thousand ModelDeployments mean thousands of children and pods; a full copy of each, with the
``managedFields`` every writer leaves on it, would be most of the operator's memory. Kept:

- an owned child or a watched resource: the object without other writers' ``managedFields``
  (the operator's own entries stay: Server-Side Apply's "unchanged" reads them);
- a pod: its name, labels, whether the scheduler could place it (``status.unschedulable_reason``)
  and whether it serves (Ready, its address, not crash-looping: ``autoscaling.loads.serving_pods``
  reads nothing else);
- a tenant's key Secret: its type and metadata, not the key records (the operator renders none:
  the admin CLI writes them).
"""

from __future__ import annotations

from typing import Any, Final

from paitient_common.kubeapi import Obj
from paitient_operator.children import FIELD_MANAGER

_CRASHING: Final = "CrashLoopBackOff"
_POD_META: Final = ("name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp")


def with_kind(obj: Obj, api_version: str, kind: str) -> Obj:
    """The object with its apiVersion and kind, which a list leaves off its items."""
    if obj.get("apiVersion") == api_version and obj.get("kind") == kind:
        return obj
    return {**obj, "apiVersion": api_version, "kind": kind}


def keep_object(obj: Obj) -> Obj:
    """The object without other writers' managedFields (a shallow copy: nothing is shared
    that a reader could change, as readers copy before they edit)."""
    meta = obj.get("metadata") or {}
    fields = meta.get("managedFields")
    if not fields:
        return obj
    ours = [f for f in fields if f.get("manager") == FIELD_MANAGER]
    kept_meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if ours:
        kept_meta["managedFields"] = ours
    return {**obj, "metadata": kept_meta}


def keep_pod(pod: Obj) -> Obj:
    """Name, labels, phase, the PodScheduled condition, Ready's status, the pod's address and
    the reason of a container waiting in CrashLoopBackOff."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    conditions = [
        c if c.get("type") == "PodScheduled" else {"type": "Ready", "status": c.get("status")}
        for c in status.get("conditions") or []
        if c.get("type") in ("PodScheduled", "Ready")
    ]
    kept: dict[str, Any] = {"phase": status.get("phase")}
    if conditions:
        kept["conditions"] = conditions
    if status.get("podIP"):
        kept["podIP"] = status["podIP"]
    crashing = [
        {"state": {"waiting": {"reason": _CRASHING}}}
        for s in status.get("containerStatuses") or []
        if (s.get("state") or {}).get("waiting", {}).get("reason") == _CRASHING
    ]
    if crashing:
        kept["containerStatuses"] = crashing
    return {"metadata": {k: meta[k] for k in _POD_META if k in meta}, "status": kept}


def keep_metadata(obj: Obj) -> Obj:
    """apiVersion, kind, type and metadata (the operator's managedFields only): a Secret
    without its data."""
    return keep_object({k: obj[k] for k in ("apiVersion", "kind", "type", "metadata") if k in obj})

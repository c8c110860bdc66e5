"""The Lease record and the one decision of leader election, as pure functions.

The rules are client-go's (``k8s.io/client-go/tools/leaderelection``): a replica may take the
Lease when nobody holds it, when it holds it already (a renewal), or when the holder has not
changed the record for ``leaseDurationSeconds`` *as measured on this replica's own clock* from
the moment it first saw that record. Time on other machines is never compared with ours, so a
skewed clock cannot hand the Lease to two replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from paitient_common.kubeapi import Obj

API_VERSION: Final = "coordination.k8s.io/v1"
KIND: Final = "Lease"
LABELS: Final = {
    "app.kubernetes.io/managed-by": "paitient-operator",
    "app.kubernetes.io/part-of": "paitient",
}
_MICRO_TIME: Final = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime


@dataclass(frozen=True)
class LeaseRecord:
    """What ``spec`` of the Lease says: who holds it, for how long, since when."""

    holder: str
    duration_seconds: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0


def _format(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime(_MICRO_TIME) if moment is not None else None


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def record_of(lease: Obj) -> LeaseRecord:
    """The record a Lease object holds (missing fields read as nobody, zero)."""
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=_parse(spec.get("acquireTime")),
        renew_time=_parse(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def lease_spec(record: LeaseRecord) -> Obj:
    spec: Obj = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_seconds,
        "leaseTransitions": record.transitions,
    }
    for key, moment in (("acquireTime", record.acquire_time), ("renewTime", record.renew_time)):
        if moment is not None:
            spec[key] = _format(moment)
    return spec


def build_lease(namespace: str, name: str, record: LeaseRecord, resource_version: str = "") -> Obj:
    """The Lease to create (no ``resource_version``) or to replace, guarded by the version read:
    of two replicas writing at once, the API server accepts one and refuses the other (409)."""
    metadata: Obj = {"name": name, "namespace": namespace, "labels": dict(LABELS)}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": lease_spec(record),
    }


def held_by_another(record: LeaseRecord, me: str, observed_at: float, now: float) -> bool:
    """Someone else holds the Lease and may still be renewing it: ``observed_at`` is when this
    replica first saw ``record`` (its monotonic clock), ``now`` the same clock now."""
    if not record.holder or record.holder == me:
        return False
    return now < observed_at + record.duration_seconds


def claim(
    current: LeaseRecord | None,
    me: str,
    duration_seconds: int,
    observed_at: float,
    now: float,
    wall: datetime,
) -> LeaseRecord | None:
    """The record to write to hold the Lease from now on, or None while another holds it."""
    if current is None:
        return LeaseRecord(me, duration_seconds, wall, wall, 0)
    if held_by_another(current, me, observed_at, now):
        return None
    if current.holder == me:
        return replace(current, duration_seconds=duration_seconds, renew_time=wall)
    return LeaseRecord(me, duration_seconds, wall, wall, current.transitions + 1)


def released(current: LeaseRecord, wall: datetime) -> LeaseRecord:
    """What a leader that stops on purpose writes: nobody holds it, so a standby takes it at its
    next try instead of waiting out the duration (client-go's ``ReleaseOnCancel``)."""
    return LeaseRecord("", 1, wall, wall, current.transitions)

"""Condition types, reasons and the one helper that writes them, for every kind we own.

Conditions follow ``metav1.Condition`` (type, status, observedGeneration, lastTransitionTime,
reason, message). ``set_condition`` is pure: it returns a new list, and returns an equal list
when nothing changed, so a handler that compares before patching writes nothing on a resync.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

Condition = dict[str, Any]
Status = Literal["True", "False", "Unknown"]

# --- condition types --------------------------------------------------------------------------
# Ready is the summary every kind has; the others say which step got in its way.
TYPE_READY: Final = "Ready"
TYPE_SPEC_VALID: Final = "SpecValid"
TYPE_STORAGE_ENCRYPTED: Final = "StorageEncrypted"
TYPE_NETWORK_POLICY_APPLIED: Final = "NetworkPolicyApplied"
TYPE_SCHEDULED: Final = "Scheduled"
TYPE_CERTIFICATE_READY: Final = "CertificateReady"
# Whether something scales the deployment (spec.autoscaling): which engine, or why none.
TYPE_AUTOSCALER_ACTIVE: Final = "AutoscalerActive"

# --- reasons ----------------------------------------------------------------------------------
REASON_READY: Final = "Ready"
REASON_PROGRESSING: Final = "Progressing"
REASON_PENDING: Final = "Pending"
REASON_DEGRADED: Final = "Degraded"
REASON_SCALED_TO_ZERO: Final = "ScaledToZero"
REASON_UNSCHEDULABLE: Final = "Unschedulable"
REASON_GPU_CAPACITY: Final = "GPUCapacity"
REASON_STORAGE_ENCRYPTED: Final = "StorageEncrypted"
REASON_STORAGE_NOT_ENCRYPTED: Final = "StorageNotEncrypted"
REASON_NETWORK_POLICY_APPLIED: Final = "NetworkPolicyApplied"
REASON_VALID: Final = "Valid"
REASON_INVALID_SPEC: Final = "InvalidSpec"
REASON_TIER_LIMIT_EXCEEDED: Final = "TierLimitExceeded"
REASON_SUSPENDED: Final = "Suspended"
REASON_RECONCILE_ERROR: Final = "ReconcileError"
REASON_CERTIFICATE_ISSUED: Final = "CertificateIssued"
REASON_CERTIFICATE_PENDING: Final = "CertificatePending"
REASON_NATIVE_AUTOSCALER: Final = "NativeAutoscaler"
REASON_HPA_RENDERED: Final = "HorizontalPodAutoscaler"
REASON_SCALED_OBJECT_RENDERED: Final = "KEDAScaledObject"
REASON_YIELDED: Final = "YieldedToAnotherAutoscaler"
REASON_KEDA_NOT_INSTALLED: Final = "KEDANotInstalled"

# --- phases -----------------------------------------------------------------------------------
PHASE_PENDING: Final = "Pending"
PHASE_PROGRESSING: Final = "Progressing"
PHASE_READY: Final = "Ready"
PHASE_DEGRADED: Final = "Degraded"
PHASE_FAILED: Final = "Failed"
PHASE_SCALED_TO_ZERO: Final = "ScaledToZero"

# Reasons time will not fix: the user must change the spec (or their subscription).
FAILED_REASONS: Final = frozenset(
    {
        REASON_INVALID_SPEC,
        REASON_STORAGE_NOT_ENCRYPTED,
        REASON_TIER_LIMIT_EXCEEDED,
        REASON_SUSPENDED,
    }
)
# Reasons meaning "waiting for the cluster to place it", not "on its way".
PENDING_REASONS: Final = frozenset({REASON_PENDING, REASON_UNSCHEDULABLE, REASON_GPU_CAPACITY})
DEGRADED_REASONS: Final = frozenset({REASON_DEGRADED})

# metav1.Condition's own validation (the API server refuses a status that breaks it).
_TYPE_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_MAX_MESSAGE = 32768


def _status_text(status: bool | str) -> Status:
    if status is True or status == "True":
        return "True"
    if status is False or status == "False":
        return "False"
    if status == "Unknown":
        return "Unknown"
    raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")


def format_time(now: datetime | str) -> str:
    """RFC 3339 in UTC at second precision, the form ``metav1.Time`` serialises to."""
    if isinstance(now, str):
        return now
    if now.tzinfo is None:
        raise ValueError("condition times must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Condition | None:
    """The condition of ``type_`` (a copy), or None."""
    for cond in conditions or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type: str,  # the metav1.Condition field name, so call sites read like the object
    status: bool | str,
    reason: str,
    message: str,
    observed_generation: int | None,
    now: datetime | str,
) -> list[Condition]:
    """A new condition list with ``type`` set; ``lastTransitionTime`` moves only when the
    status flips, so "since when" stays true across resyncs. Order of the others is kept."""
    if not _TYPE_RE.match(type) or len(type) > 316:
        raise ValueError(f"invalid condition type {type!r}")
    if not _REASON_RE.match(reason) or len(reason) > 1024:
        raise ValueError(f"invalid condition reason {reason!r} (CamelCase, e.g. InvalidSpec)")
    status_text = _status_text(status)
    previous = get_condition(conditions, type)
    if previous is not None and previous.get("status") == status_text:
        transition = previous.get("lastTransitionTime") or format_time(now)
    else:
        transition = format_time(now)
    updated: Condition = {
        "type": type,
        "status": status_text,
        "reason": reason,
        "message": message[:_MAX_MESSAGE],
        "lastTransitionTime": transition,
    }
    if observed_generation is not None:
        updated["observedGeneration"] = observed_generation

    result: list[Condition] = []
    replaced = False
    for cond in conditions or ():
        if cond.get("type") == type:
            result.append(updated)
            replaced = True
        else:
            result.append(dict(cond))
    if not replaced:
        result.append(updated)
    return result


def remove_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> list[Condition]:
    """A new list without the condition of ``type_``."""
    return [dict(c) for c in conditions or () if c.get("type") != type_]


def phase_from(conditions: Iterable[Mapping[str, Any]] | None) -> str:
    """The one-word phase a ``Ready`` condition implies.

    Ready=True is Ready; otherwise the reason decides: a reason time will not fix is Failed,
    waiting for placement is Pending, losing replicas after being ready is Degraded, and
    anything else is still Progressing. No Ready condition yet means Pending. Zero replicas
    asked for (an idle autoscaled deployment, or replicas: 0) is ScaledToZero.
    """
    ready = get_condition(conditions, TYPE_READY)
    if ready is None:
        return PHASE_PENDING
    if ready.get("status") == "True":
        return PHASE_READY
    reason = ready.get("reason", "")
    if reason in FAILED_REASONS:
        return PHASE_FAILED
    if reason in PENDING_REASONS:
        return PHASE_PENDING
    if reason in DEGRADED_REASONS:
        return PHASE_DEGRADED
    if reason == REASON_SCALED_TO_ZERO:
        return PHASE_SCALED_TO_ZERO
    return PHASE_PROGRESSING

"""What a ModelDeployment's status says, computed from what the cluster shows (pure).

Inputs are plain API objects (the live Deployment, the pods); output is the whole ``status``.
``set_condition`` keeps ``lastTransitionTime`` when nothing flips, so an unchanged world gives an
equal status and the handler writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator import conditions as c
from paitient_operator.builders.metadata import selector_string
from paitient_operator.builders.service import endpoint_url
from paitient_operator.certificates.serving import ServingCertificate
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import OperatorError, StorageNotEncrypted

Obj = dict[str, Any]


# What the scheduler says of a pod whose claim the volume controller has not bound yet: a wait
# of seconds (the model cache is being provisioned), not a pod that cannot be placed.
CLAIM_NOT_BOUND_YET = "unbound immediate PersistentVolumeClaims"


def unschedulable_reason(pods: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(reason, scheduler message) when a pod cannot be placed, else None.

    GPUCapacity when the scheduler's message is about GPUs (too few free, or no node of the
    product asked for); Unschedulable for anything else it says, but a claim not bound yet
    (still Progressing: the status says it waits for its volume).
    """
    for pod in pods:
        for cond in pod.get("status", {}).get("conditions", []) or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
                and CLAIM_NOT_BOUND_YET not in str(cond.get("message", ""))
            ):
                message = str(cond.get("message", ""))
                gpu = "nvidia.com/gpu" in message or "node affinity/selector" in message
                return (c.REASON_GPU_CAPACITY if gpu else c.REASON_UNSCHEDULABLE, message)
    return None


def observed_status(
    md: ModelDeployment,
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    previous: Mapping[str, Any] | None,
    config: OperatorConfig,
    now: datetime | str,
    certificate: ServingCertificate | None = None,
    autoscaler: tuple[bool, str, str] | None = None,
    autoscaling: Obj | None = None,
) -> Obj:
    """Status of a deployment whose children were all applied. ``autoscaler`` is the
    AutoscalerActive condition (status, reason, message) and ``autoscaling`` the autoscaler's
    block (``status.autoscaling``), for a deployment with ``spec.autoscaling``."""
    gen = md.metadata.generation
    conds = list((previous or {}).get("conditions", []) or [])
    conds = c.set_condition(conds, c.TYPE_SPEC_VALID, True, c.REASON_VALID, "", gen, now)
    conds = c.set_condition(
        conds, c.TYPE_STORAGE_ENCRYPTED, True, c.REASON_STORAGE_ENCRYPTED,
        "Model cache is on a StorageClass known to be encrypted.", gen, now,
    )  # fmt: skip
    conds = c.set_condition(
        conds, c.TYPE_NETWORK_POLICY_APPLIED, True, c.REASON_NETWORK_POLICY_APPLIED,
        "Ingress only to the gateway port; egress only DNS and the model source.", gen, now,
    )  # fmt: skip
    if certificate is not None:
        reason = c.REASON_CERTIFICATE_ISSUED if certificate.ready else c.REASON_CERTIFICATE_PENDING
        conds = c.set_condition(
            conds, c.TYPE_CERTIFICATE_READY, certificate.ready, reason,
            f"{certificate.secret_name} from {certificate.issuer}: {certificate.message}", gen, now,
        )  # fmt: skip
    if autoscaler is not None:
        active, reason, message = autoscaler
        conds = c.set_condition(conds, c.TYPE_AUTOSCALER_ACTIVE, active, reason, message, gen, now)
    else:
        conds = c.remove_condition(conds, c.TYPE_AUTOSCALER_ACTIVE)
    dep_status = (deployment or {}).get("status", {}) or {}
    dep_spec = (deployment or {}).get("spec", {}) or {}
    desired = int(dep_spec.get("replicas", md.spec.fixed_replicas))
    ready = int(dep_status.get("readyReplicas", 0) or 0)
    updated = int(dep_status.get("updatedReplicas", 0) or 0)
    was_ready = (c.get_condition(conds, c.TYPE_READY) or {}).get("status") == "True"
    stuck = unschedulable_reason(pods)

    if stuck is not None:
        reason, detail = stuck
        conds = c.set_condition(conds, c.TYPE_SCHEDULED, False, reason, detail, gen, now)
    else:
        conds = c.set_condition(
            conds, c.TYPE_SCHEDULED, True, c.REASON_READY, "All pods are placed.", gen, now
        )

    ready_status, reason, message = _readiness(md, desired, ready, updated, was_ready, stuck)
    conds = c.set_condition(conds, c.TYPE_READY, ready_status, reason, message, gen, now)
    status: Obj = {
        "phase": c.phase_from(conds),
        "conditions": conds,
        "observedGeneration": gen,
        "readyReplicas": ready,
        "replicas": int(dep_status.get("replicas", 0) or 0),
        "desiredReplicas": desired,
        "selector": selector_string(md),
        "endpoint": endpoint_url(md, config),
        "message": message,
    }
    if certificate is not None:
        status["servingCertificate"] = certificate.status()
    if autoscaling is not None or (previous or {}).get("autoscaling") is not None:
        status["autoscaling"] = autoscaling  # None removes it: autoscaling was taken out
    return status


def _readiness(
    md: ModelDeployment,
    desired: int,
    ready: int,
    updated: int,
    was_ready: bool,
    stuck: tuple[str, str] | None,
) -> tuple[bool, str, str]:
    """The Ready condition: (status, reason, message)."""
    if desired == 0 and ready == 0:
        ready_status, reason = False, c.REASON_SCALED_TO_ZERO
        message = "Scaled to zero replicas."
        if md.spec.autoscaling is not None and md.spec.autoscaling.min_replicas == 0:
            message += " A request starts one (the front door holds it meanwhile)."
    elif ready >= desired and updated >= desired:
        ready_status, reason, message = True, c.REASON_READY, f"{ready}/{desired} replicas ready."
    elif md.spec.autoscaling is not None and ready > 0:
        # Scaling: it serves with what it has while replicas start or drain.
        ready_status, reason = True, c.REASON_READY
        message = f"{ready}/{desired} replicas ready; scaling."
    elif stuck is not None:
        ready_status, reason = False, stuck[0]
        message = f"{ready}/{desired} replicas ready; cannot be scheduled: {stuck[1]}"
    elif was_ready and ready < desired and updated >= desired:
        ready_status, reason = False, c.REASON_DEGRADED
        message = f"{ready}/{desired} replicas ready."
    else:
        ready_status, reason = False, c.REASON_PROGRESSING
        message = f"{ready}/{desired} replicas ready, {updated} up to date."
    return ready_status, reason, message


def refused_status(
    error: OperatorError,
    generation: int | None,
    previous: Mapping[str, Any] | None,
    now: datetime | str,
) -> Obj:
    """Status of a deployment the operator refused: phase Failed, the reason, nothing created."""
    conds = list((previous or {}).get("conditions", []) or [])
    if isinstance(error, StorageNotEncrypted):
        conds = c.set_condition(
            conds, c.TYPE_STORAGE_ENCRYPTED, False, error.reason, error.message, generation, now
        )
    else:
        conds = c.set_condition(
            conds, c.TYPE_SPEC_VALID, False, error.reason, error.message, generation, now
        )
    conds = c.set_condition(
        conds, c.TYPE_READY, False, error.reason, error.message, generation, now
    )
    return {
        "phase": c.PHASE_FAILED,
        "conditions": conds,
        "observedGeneration": generation,
        "readyReplicas": 0,
        "replicas": 0,
        "message": error.message,
    }


def status_changes(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Obj | None:
    """A JSON merge patch from ``previous`` to ``new`` (kopf's own keys left alone); None when
    nothing changed, so a resync writes nothing. Objects are compared key by key, and a key
    that ``new`` no longer has inside an object it shares with ``previous`` is removed (null)."""
    previous = previous or {}
    changed: Obj = {}
    for key, value in new.items():
        before = previous.get(key)
        if before == value:
            continue
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            changed[key] = _object_changes(before, value)
        else:
            changed[key] = value
    return changed or None


def _object_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> Obj:
    patch: Obj = {key: None for key in before if key not in after}
    for key, value in after.items():
        old = before.get(key)
        if old == value:
            continue
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            patch[key] = _object_changes(old, value)
        else:
            patch[key] = value
    return patch

"""What a reconcile does about replicas, from the spec and what the cluster shows (pure).

- No ``spec.autoscaling``: the spec's ``replicas``, unless an autoscaler of the user's scales
  the Deployment (then its replicas are left to it, as before).
- ``engine: native``: the decision function (``decision.py``) moves the level it last wrote in
  ``status.autoscaling.desiredReplicas``; the Deployment gets that. Unless a user's HPA or KEDA
  ScaledObject already scales this deployment: then the operator yields (never two
  controllers on one ``replicas``) and says so in the ``AutoscalerActive`` condition.
- ``engine: hpa`` / ``keda``: the HorizontalPodAutoscaler / ScaledObject is rendered, and the
  Deployment's replicas are left to it. Without KEDA's CRDs a ScaledObject cannot exist: the
  condition says so and the Deployment keeps ``minReplicas`` (at least one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator import conditions as c
from paitient_operator.autoscaling.decision import (
    Decision,
    Memory,
    Observation,
    Pending,
    Policy,
    ReplicaLoad,
    decide,
)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Autoscaler:
    """An autoscaler found pointing at a deployment (or its ModelDeployment)."""

    kind: str
    name: str
    owned: bool  # rendered by the operator for this ModelDeployment
    target_kind: str = "Deployment"  # or ModelDeployment (through its scale subresource)

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], uid: str) -> Autoscaler:
        """From a view's entry (``cluster_view.scaler_entry``), for the ModelDeployment ``uid``."""
        return cls(
            str(entry.get("kind")),
            str(entry.get("name")),
            entry.get("owner") == uid,
            str(entry.get("targetKind", "Deployment")),
        )

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class ScalingPlan:
    """Replicas to render (None: leave them to an autoscaler), which autoscaler object to
    render (engine hpa or keda), the condition, and ``status.autoscaling``."""

    replicas: int | None
    render: str | None = None  # "hpa" or "keda"
    condition: tuple[bool, str, str] | None = None
    status: Obj | None = None
    decision: Decision | None = None
    yielded_to: Sequence[Autoscaler] = field(default_factory=tuple)


def policy_of(md: ModelDeployment) -> Policy:
    spec = md.spec.autoscaling
    assert spec is not None
    return Policy(
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        target=spec.target.value,
        metric=spec.target.metric,
        scale_down_delay=spec.scale_down_delay_period,
        stabilization_window=spec.stabilization_window_period,
    )


def plan_scaling(
    md: ModelDeployment,
    previous: Mapping[str, Any],
    autoscalers: Sequence[Autoscaler],
    now: datetime,
    *,
    loads: Sequence[ReplicaLoad] | None = None,
    wake_token: str | None = None,
    keda_installed: bool = False,
) -> ScalingPlan:
    """The plan for ``md`` given its ``previous`` status and the autoscalers pointing at it."""
    spec = md.spec.autoscaling
    others = [a for a in autoscalers if not a.owned]
    if spec is None:
        # One on the Deployment owns its replicas; one on the ModelDeployment's scale
        # subresource changes spec.replicas, which flows through.
        on_deployment = [a for a in others if a.target_kind == "Deployment"]
        return ScalingPlan(
            None if on_deployment else md.spec.fixed_replicas, yielded_to=on_deployment
        )
    block = dict(previous.get("autoscaling") or {})
    if spec.engine == "hpa":
        message = f"HorizontalPodAutoscaler {md.name} scales it on the gateways' metrics."
        condition = (True, c.REASON_HPA_RENDERED, message)
        return ScalingPlan(None, "hpa", condition, {"engine": "hpa"})
    if spec.engine == "keda":
        if not keda_installed:
            message = (
                "spec.autoscaling.engine keda needs KEDA's CRDs (keda.sh/v1alpha1 ScaledObject) "
                f"installed; until then it runs {max(spec.min_replicas, 1)} replica(s)"
            )
            condition = (False, c.REASON_KEDA_NOT_INSTALLED, message)
            return ScalingPlan(max(spec.min_replicas, 1), None, condition, {"engine": "keda"})
        message = f"KEDA ScaledObject {md.name} scales it on the gateways' metrics."
        condition = (True, c.REASON_SCALED_OBJECT_RENDERED, message)
        return ScalingPlan(None, "keda", condition, {"engine": "keda"})
    if others:
        names = ", ".join(sorted(str(a) for a in others))
        message = (
            f"{names} already scales this deployment: the native autoscaler leaves the "
            "replicas to it (remove it, or spec.autoscaling)"
        )
        status = _set({**_memory_block(_memory(block)), "engine": "native", "yieldedTo": names})
        return ScalingPlan(None, None, (False, c.REASON_YIELDED, message), status,
                           yielded_to=others)  # fmt: skip
    current = _level(block, previous, spec.min_replicas)
    seen = Observation(now, current, loads, wake_token)
    decision = decide(policy_of(md), seen, _memory(block))
    status = {
        **_memory_block(decision.memory),
        "engine": "native",
        "desiredReplicas": decision.replicas,
        "lastScaleTime": block.get("lastScaleTime"),
        "lastDecision": block.get("lastDecision"),
    }
    if decision.changed:
        when = _time(now)
        status["lastScaleTime"] = when
        status["lastDecision"] = {
            "time": when,
            "fromReplicas": decision.previous,
            "toReplicas": decision.replicas,
            "reason": decision.reason,
            "message": decision.message,
            "inputs": _inputs(decision),
        }
    message = (
        f"The operator scales it between {spec.min_replicas} and {spec.max_replicas} replicas "
        f"on {spec.target.metric} (target {spec.target.value:g} per replica)."
    )
    condition = (True, c.REASON_NATIVE_AUTOSCALER, message)
    return ScalingPlan(decision.replicas, None, condition, _set(status), decision)


def _level(block: Mapping[str, Any], previous: Mapping[str, Any], minimum: int) -> int:
    """The replicas the native autoscaler last asked for; before its first decision, what the
    Deployment ran (a deployment that starts autoscaling keeps its replicas), else minimum."""
    for value in (block.get("desiredReplicas"), previous.get("desiredReplicas")):
        if isinstance(value, int) and value >= 0:
            return value
    return minimum


def _memory(block: Mapping[str, Any]) -> Memory:
    pending = block.get("pending") or {}
    parsed = None
    if pending.get("direction") in ("up", "down") and pending.get("since"):
        parsed = Pending(pending["direction"], _parse(pending["since"]), int(pending["replicas"]))
    seen_at = block.get("wakeSeenAt")
    return Memory(parsed, block.get("wakeToken"), _parse(seen_at) if seen_at else None)


def _memory_block(memory: Memory) -> Obj:
    pending = None
    if memory.pending is not None:
        pending = {
            "direction": memory.pending.direction,
            "since": _time(memory.pending.since),
            "replicas": memory.pending.replicas,
        }
    return {
        "pending": pending,
        "wakeToken": memory.wake_token,
        "wakeSeenAt": _time(memory.wake_seen_at) if memory.wake_seen_at else None,
    }


def _inputs(decision: Decision) -> Obj:
    i = decision.inputs
    return _set(
        {
            "metric": i.metric,
            "target": i.target,
            "replicasRead": i.replicas_read,
            "inFlight": i.in_flight,
            "running": i.running,
            "waiting": i.waiting,
            "unread": i.unread,
            "woken": i.woken,
            "recommendation": i.recommendation,
        }
    )


def _set(block: Obj) -> Obj:
    """The fields that have a value: what the API server keeps (the status patch removes the
    ones that went, ``status_changes``), so the block compares equal to the stored one."""
    return {k: v for k, v in block.items() if v is not None}


def _time(moment: datetime) -> str:
    """RFC 3339 with milliseconds: windows of a few seconds are timed from these."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

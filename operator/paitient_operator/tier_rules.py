"""A ModelDeployment against its tenant's tier (pure): GPUs allowed, GPU and deployment counts.

The oldest deployments keep their place: when a namespace holds more than the tier allows, the
newest ones are refused, so a new deployment can never push out a running one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_common.tiers import Tier
from paitient_operator.errors import TierLimitExceeded


def _gpus(body: Mapping[str, Any]) -> int:
    """GPUs a deployment may hold: per replica times its most replicas (an autoscaler's
    maximum counts, not what it runs now: the tier must hold every replica it may start)."""
    spec = body.get("spec", {})
    if not spec.get("useGpu", True):
        return 0
    autoscaling = spec.get("autoscaling") or {}
    most = autoscaling.get("maxReplicas", spec.get("replicas"))
    return int((spec.get("gpu") or {}).get("count", 1)) * int(1 if most is None else most)


def _age(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata", {})
    return (str(meta.get("creationTimestamp", "")), str(meta.get("name", "")))


def check_tier(
    md: ModelDeployment,
    tier_name: str,
    tier: Tier,
    namespace_deployments: Sequence[Mapping[str, Any]],
    created: str,
) -> None:
    """Raise ``TierLimitExceeded`` if ``md`` breaks ``tier`` given the namespace's deployments
    (``md`` itself may be among them; ``created`` is its creationTimestamp)."""
    own_gpus = md.spec.gpu_count * md.spec.most_replicas
    if own_gpus and not tier.gpus_allowed:
        raise TierLimitExceeded(
            f"tier {tier_name!r} does not allow GPUs; set useGpu: false or move to a tier with GPUs"
        )
    me = (created, md.name)
    older = [
        d for d in namespace_deployments
        if d.get("metadata", {}).get("name") != md.name and _age(d) < me
    ]  # fmt: skip
    if len(older) + 1 > tier.max_deployments:
        raise TierLimitExceeded(
            f"tier {tier_name!r} allows {tier.max_deployments} deployments and "
            f"{len(older)} already exist"
        )
    used = sum(_gpus(d) for d in older)
    if used + own_gpus > tier.max_gpus:
        asks = f"this deployment asks for {own_gpus}"
        if md.spec.autoscaling is not None:
            asks = (
                f"spec.autoscaling.maxReplicas {md.spec.autoscaling.max_replicas} x "
                f"{md.spec.gpu_count} GPUs asks for {own_gpus}; lower maxReplicas"
            )
        raise TierLimitExceeded(
            f"tier {tier_name!r} allows {tier.max_gpus} GPUs; {used} are in use and {asks}"
        )

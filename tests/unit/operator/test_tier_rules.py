"""A ModelDeployment against its tenant's tier (``paitient_operator.tier_rules``, pure): GPUs
allowed, deployment and GPU counts, and the oldest deployments keeping their place."""

from __future__ import annotations

from typing import Any

import pytest

from paitient_common.tiers import DEFAULT_TIERS, Tier
from paitient_operator.errors import TierLimitExceeded
from paitient_operator.tier_rules import check_tier
from tests.unit.operator.factories import make_md

SMALL = Tier(
    token_limit=1000,
    requests_per_minute=10,
    tokens_per_minute=1000,
    max_deployments=2,
    max_gpus=4,
    gpus_allowed=True,
)


def existing(name: str, created: str, gpus: int = 0, replicas: int = 1) -> dict[str, Any]:
    """A deployment already in the namespace, as the API lists it."""
    spec: dict[str, Any] = {"useGpu": gpus > 0, "replicas": replicas}
    if gpus:
        spec["gpu"] = {"count": gpus}
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": spec}


def test_a_tier_without_gpus_refuses_a_gpu_deployment_and_takes_a_cpu_one() -> None:
    free = DEFAULT_TIERS["free"]
    with pytest.raises(TierLimitExceeded, match="tier 'free' does not allow GPUs"):
        check_tier(make_md("g").gpus(1).obj(), "free", free, [], "2026-01-01T00:00:00Z")
    check_tier(make_md("c").cpu_only().obj(), "free", free, [], "2026-01-01T00:00:00Z")


def test_the_newest_deployment_past_the_count_is_refused_and_older_ones_keep_their_place() -> None:
    namespace = [
        existing("a", "2026-01-01T00:00:00Z"),
        existing("b", "2026-01-02T00:00:00Z"),
        existing("c", "2026-01-03T00:00:00Z"),
    ]
    md = lambda name: make_md(name).cpu_only().obj()  # noqa: E731
    check_tier(md("a"), "small", SMALL, namespace, "2026-01-01T00:00:00Z")
    check_tier(md("b"), "small", SMALL, namespace, "2026-01-02T00:00:00Z")
    with pytest.raises(TierLimitExceeded) as refused:
        check_tier(md("c"), "small", SMALL, namespace, "2026-01-03T00:00:00Z")
    assert str(refused.value) == "tier 'small' allows 2 deployments and 2 already exist"


def test_same_second_deployments_are_ordered_by_name() -> None:
    same = "2026-01-01T00:00:00Z"
    namespace = [existing("x", same), existing("y", same), existing("z", same)]
    check_tier(make_md("y").cpu_only().obj(), "small", SMALL, namespace, same)
    with pytest.raises(TierLimitExceeded):
        check_tier(make_md("z").cpu_only().obj(), "small", SMALL, namespace, same)


def test_gpus_count_across_replicas_of_the_older_deployments_only() -> None:
    older = [existing("a", "2026-01-01T00:00:00Z", gpus=1, replicas=3)]
    newer = [*older, existing("late", "2026-01-09T00:00:00Z", gpus=4)]
    check_tier(make_md("b").gpus(1).obj(), "small", SMALL, newer, "2026-01-02T00:00:00Z")
    with pytest.raises(TierLimitExceeded) as refused:
        check_tier(
            make_md("b").gpus(1).replicas(2).obj(), "small", SMALL, older, "2026-01-02T00:00:00Z"
        )
    assert str(refused.value) == (
        "tier 'small' allows 4 GPUs; 3 are in use and this deployment asks for 2"
    )

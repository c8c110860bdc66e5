"""A gateway's shares while the store is unreachable (pure): a bucket of capacity / N that
starts empty, a usage budget that subtracts what others could have taken unseen, the deficits
charged back, the last minute's use; and the N each scope takes."""

from __future__ import annotations

import math

import pytest

from paitient_common.store.limits import Bucket
from paitient_gateway.errors import LimitExceeded
from paitient_gateway.fallback import LocalShares, RecentUse, SeenUsage, ShareCost, usage_budget
from paitient_gateway.membership import ALL_GATEWAYS, Membership

TOKENS = Bucket("t:acme", "tokens", 600)  # 10 per second
REQUESTS = Bucket("t:acme", "requests", 60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_usage_budget_subtracts_what_the_others_could_have_reserved_unseen() -> None:
    seen = SeenUsage(used=500, reserved=100, tokens_level=50, seen_at=10.0)
    # 1000 - 500 - 100 - (50 + 10/s x 2 s) = 330, shared by 3
    assert usage_budget(1000, seen, 600, now=12.0, replicas=3) == pytest.approx(110)
    assert usage_budget(1000, seen, 600, now=100.0, replicas=3) == 0  # long unseen: nothing
    assert usage_budget(None, seen, 600, now=12.0, replicas=3) == math.inf
    assert usage_budget(1000, None, 600, now=12.0, replicas=3) == 0  # never seen: nothing


def test_a_share_starts_empty_and_refills_at_its_part_of_the_rate() -> None:
    clock = Clock()
    shares = LocalShares(clock)
    cost = [ShareCost(TOKENS, 11, replicas=2), ShareCost(REQUESTS, 1, replicas=2)]
    with pytest.raises(LimitExceeded) as refused:
        shares.admit(cost, ("acme", "p"), math.inf, 11)
    assert refused.value.reason == "rate_limit" and "share" in refused.value.message
    assert refused.value.retry_after == pytest.approx(11 / 5)  # 300 per minute: 5 per second
    clock.now += 2.2
    headers = shares.admit(cost, ("acme", "p"), math.inf, 11)
    assert headers["x-ratelimit-limit-tokens"] == "300"
    assert shares.buckets[TOKENS.key].capacity == 300


def test_a_share_starts_in_the_debt_the_shared_bucket_was_last_seen_in() -> None:
    clock = Clock()
    shares = LocalShares(clock)
    with pytest.raises(LimitExceeded) as refused:
        shares.admit([ShareCost(TOKENS, 10, 2, seen_level=-100)], ("acme", "p"), math.inf, 10)
    assert refused.value.retry_after == pytest.approx((50 + 10) / 5)


def test_the_usage_share_holds_and_settles() -> None:
    clock = Clock()
    shares = LocalShares(clock)
    cost = [ShareCost(Bucket("t:acme", "tokens", 10**6), 10, 1)]
    with pytest.raises(LimitExceeded):  # the share is made, empty
        shares.admit(cost, ("acme", "p"), 25, 10)
    clock.now += 60  # full enough: only the budget matters now
    shares.admit(cost, ("acme", "p"), 25, 10)
    shares.admit(cost, ("acme", "p"), 25, 10)
    with pytest.raises(LimitExceeded) as refused:
        shares.admit(cost, ("acme", "p"), 25, 10)
    assert refused.value.reason == "usage_limit"
    shares.settle([], ("acme", "p"), reserved=10, used=4)
    shares.admit(cost, ("acme", "p"), 25, 10)  # 4 used + 10 held + 10 <= 25


def test_deficits_are_what_the_shares_took_beyond_an_untouched_share() -> None:
    clock = Clock()
    shares = LocalShares(clock)
    clock.now += 10
    assert shares.deficits() == {}
    cost = [ShareCost(TOKENS, 30, replicas=2)]
    with pytest.raises(LimitExceeded):  # made empty now
        shares.admit(cost, ("acme", "p"), math.inf, 30)
    clock.now += 10  # 50 in it
    shares.admit(cost, ("acme", "p"), math.inf, 30)
    clock.now += 10  # an untouched share would be at 100 now; this one at 70
    assert shares.deficits() == {TOKENS.key: pytest.approx(30)}


def test_recent_use_counts_the_last_minute_net_of_refunds() -> None:
    clock = Clock()
    recent = RecentUse(clock)
    recent.add(TOKENS, 100)
    recent.add(TOKENS, -40)
    clock.now += 30
    recent.add(TOKENS, 10)
    assert recent.totals() == {TOKENS.key: 70}
    clock.now += 40  # the first second is out of the window
    assert recent.totals() == {TOKENS.key: 10}
    assert recent.buckets[TOKENS.key] == TOKENS


def test_membership_sets_and_the_n_of_each_scope() -> None:
    member = Membership("pod-1", "tenant-acme", "demo")
    keys = member.keys(["tenant-beta", "tenant-acme"])
    assert keys == [
        ALL_GATEWAYS,
        "paitient:gw:md:tenant-acme/demo",
        "paitient:gw:ns:tenant-acme",
        "paitient:gw:ns:tenant-beta",
    ]
    assert member.replicas_for_namespace("tenant-acme") == 1  # before any beat
    member.counts = {ALL_GATEWAYS: 7, keys[1]: 2, keys[2]: 3, keys[3]: 4}
    assert member.replicas_for_namespace("tenant-acme") == 3
    assert member.replicas_for_namespace("tenant-new") == 7  # a set never read: every gateway
    assert member.replicas_of_deployment() == 2
    assert not member.settled_in()

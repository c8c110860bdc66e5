"""The hash ring keeps keys where they were when a replica joins or leaves (quantified), agrees
across front doors, and bounded loads hold under any load and any skew of keys."""

from __future__ import annotations

import random
from collections import Counter

from paitient_api.replicas.choose import order
from paitient_api.replicas.ring import bounded, capacity, ring_of, stable_hash

KEYS = [stable_hash(f"tenant-{i % 7}\0prompt {i}") for i in range(20_000)]


def owners(names: list[str]) -> list[str]:
    ring = ring_of(names)
    return [ring.walk(key)[0] for key in KEYS]


def pods(n: int) -> list[str]:
    return [f"model-7d9f-{i:05d}" for i in range(n)]


def test_a_replica_joining_takes_about_its_share_and_moves_nothing_else() -> None:
    for n in (2, 3, 4, 8):
        before, after = owners(pods(n)), owners(pods(n + 1))
        moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        # Every key that moved went to the new replica: none moved between the old ones.
        assert {b for _, b in moved} == {pods(n + 1)[-1]}
        # About 1/(n+1) of the keys: the new replica's fair share, within a third of it.
        share = len(moved) / len(KEYS)
        assert abs(share - 1 / (n + 1)) < (1 / (n + 1)) / 3, (n, share)


def test_a_replica_leaving_moves_only_its_own_keys() -> None:
    for n in (3, 4, 8):
        names = pods(n)
        gone = names[1]
        before, after = owners(names), owners([p for p in names if p != gone])
        moved = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert all(before[i] == gone for i in moved)
        assert len(moved) == before.count(gone)  # its keys, and all of them
        assert abs(len(moved) / len(KEYS) - 1 / n) < (1 / n) / 3


def test_keys_spread_evenly_over_the_replicas() -> None:
    counts = Counter(owners(pods(4)))
    assert max(counts.values()) / min(counts.values()) < 1.3


def test_the_ring_is_a_function_of_the_names_alone() -> None:
    """Two front doors that list the same endpoints in any order agree on every key."""
    names = pods(5)
    shuffled = random.Random(7).sample(names, len(names))
    assert ring_of(names) == ring_of(shuffled)
    assert owners(names) == owners(shuffled)
    assert stable_hash("tenant\0text") == 0x28B889EDB353C67  # never Python's salted hash()


def test_the_walk_meets_every_replica_once() -> None:
    ring = ring_of(pods(6))
    for key in KEYS[:200]:
        walk = ring.walk(key)
        assert sorted(walk) == sorted(pods(6))


def test_capacity_is_the_bound_times_the_mean_with_this_request_rounded_up() -> None:
    assert capacity([0, 0], 1.25) == 1
    assert capacity([3, 1], 1.25) == 4  # ceil(1.25 * 5 / 2) = ceil(3.125)
    assert capacity([10, 10, 10, 10], 1.0) == 11
    assert capacity([], 1.25) == 0


def test_a_replica_at_the_bound_passes_the_request_on_round_the_ring() -> None:
    walk = ["a", "b", "c", "d"]
    assert bounded(walk, {"a": 0, "b": 0, "c": 0, "d": 0}, 1.25)[0] == "a"
    # a holds 4 of 4: room is ceil(1.25 * 5 / 4) = 2, so a spills to b, and the walk goes on.
    assert bounded(walk, {"a": 4}, 1.25) == ["b", "c", "d", "a"]
    assert bounded(walk, {"a": 2, "b": 2}, 1.25) == ["c", "d", "a", "b"]


def test_bounded_loads_hold_whatever_the_loads_and_keys() -> None:
    rng = random.Random(2026)
    for _ in range(3000):
        n = rng.randint(1, 9)
        names = pods(n)
        loads = {name: rng.choice([0, 0, 1, 2, 5, 40]) for name in names}
        bound = rng.choice([1.0, 1.1, 1.25, 2.0])
        picked = order("prefix", names, loads, rng.getrandbits(64), bound)[0]
        assert loads[picked] + 1 <= capacity(loads.values(), bound)


def test_one_hot_prefix_is_spread_within_the_bound_as_requests_pile_up() -> None:
    """Every request carries the same key (one tenant, one system prompt) and none ends: the
    ring's replica fills to the bound, then the others take turns, and no replica ever holds
    more than the bound allows when it takes a request."""
    names, key, bound = pods(4), KEYS[0], 1.25
    loads = dict.fromkeys(names, 0)
    for _ in range(400):
        picked = order("prefix", names, loads, key, bound)[0]
        assert loads[picked] + 1 <= capacity(loads.values(), bound)
        loads[picked] += 1
    assert max(loads.values()) / (sum(loads.values()) / len(names)) <= bound + 0.05


def test_least_load_takes_the_least_loaded_and_spreads_ties_by_key() -> None:
    names = pods(3)
    assert (
        order("least-load", names, {names[0]: 3, names[1]: 1, names[2]: 2}, 1, 1.25)[0] == names[1]
    )
    firsts = Counter(order("least-load", names, {}, key, 1.25)[0] for key in KEYS[:3000])
    assert set(firsts) == set(names) and min(firsts.values()) > 700


def test_round_robin_takes_each_in_turn() -> None:
    names = pods(3)
    assert [order("round-robin", names, {}, 0, 1.25, turn)[0] for turn in range(6)] == names * 2

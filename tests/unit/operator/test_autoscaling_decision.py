"""The native autoscaler's decision function: its rules one by one, then properties over random
load histories (never flaps, a repeated pass repeats nothing, always within bounds)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from paitient_operator.autoscaling.decision import (
    REASON_BOUNDS,
    REASON_LOAD_DOWN,
    REASON_LOAD_UP,
    REASON_WAKE,
    Memory,
    Observation,
    Pending,
    Policy,
    ReplicaLoad,
    decide,
)

T0 = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
POLICY = Policy(
    min_replicas=1,
    max_replicas=4,
    target=2,
    scale_down_delay=timedelta(seconds=60),
    stabilization_window=timedelta(seconds=10),
)


def loads(*in_flight: float, **kw: float) -> list[ReplicaLoad]:
    return [ReplicaLoad(f"p{i}", in_flight=v, **kw) for i, v in enumerate(in_flight)]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_load_above_target_scales_up_only_after_the_stabilisation_window() -> None:
    first = decide(POLICY, Observation(at(0), 1, loads(5)), Memory())
    assert not first.changed and first.memory.pending == Pending("up", at(0), 3)
    during = decide(POLICY, Observation(at(9), 1, loads(5)), first.memory)
    assert not during.changed
    after = decide(POLICY, Observation(at(10), 1, loads(5)), during.memory)
    assert (after.replicas, after.reason, after.memory.pending) == (3, REASON_LOAD_UP, None)
    assert after.message == (
        "1 -> 3 replicas: 5 completions in flight over 1 replicas (target 2 in flight per replica)"
    )


def test_scale_up_goes_to_the_lowest_recommendation_of_the_window() -> None:
    memory = decide(POLICY, Observation(at(0), 1, loads(8)), Memory()).memory  # wants 4
    memory = decide(POLICY, Observation(at(5), 1, loads(3)), memory).memory  # wants 2
    assert decide(POLICY, Observation(at(10), 1, loads(8)), memory).replicas == 2


def test_a_dip_back_restarts_the_window() -> None:
    memory = decide(POLICY, Observation(at(0), 1, loads(5)), Memory()).memory
    memory = decide(POLICY, Observation(at(5), 1, loads(1)), memory).memory
    assert memory.pending is None
    again = decide(POLICY, Observation(at(12), 1, loads(5)), memory)
    assert not again.changed and again.memory.pending == Pending("up", at(12), 3)


def test_scale_down_waits_the_whole_delay_and_keeps_the_highest_recommendation() -> None:
    memory = decide(POLICY, Observation(at(0), 4, loads(0, 0, 0, 0)), Memory()).memory
    memory = decide(POLICY, Observation(at(30), 4, loads(3, 0, 0, 0)), memory).memory  # wants 2
    early = decide(POLICY, Observation(at(59), 4, loads(0, 0, 0, 0)), memory)
    assert not early.changed
    done = decide(POLICY, Observation(at(60), 4, loads(0, 0, 0, 0)), early.memory)
    assert (done.replicas, done.reason) == (2, REASON_LOAD_DOWN)


def test_a_replica_whose_load_is_unknown_blocks_scaling_down_but_not_up() -> None:
    unknown = [ReplicaLoad("p0", in_flight=0), ReplicaLoad("p1")]
    memory = Memory(pending=Pending("down", at(0), 1))
    held = decide(POLICY, Observation(at(120), 2, unknown), memory)
    assert not held.changed and held.memory == memory and held.inputs.unread == 1
    busy = [ReplicaLoad("p0", in_flight=8), ReplicaLoad("p1")]
    up = decide(POLICY, Observation(at(120), 2, busy), Memory(pending=Pending("up", at(0), 4)))
    assert up.replicas == 4


def test_draining_replicas_are_not_counted() -> None:
    leaving = [ReplicaLoad("p0", in_flight=2), ReplicaLoad("p1", in_flight=9, draining=True)]
    decision = decide(POLICY, Observation(at(0), 1, leaving), Memory())
    assert decision.inputs.in_flight == 2 and decision.memory.pending is None


def test_idle_goes_to_zero_when_allowed_and_a_wake_brings_one_at_once() -> None:
    policy = Policy(0, 2, 2, scale_down_delay=timedelta(seconds=60))
    memory = decide(policy, Observation(at(0), 1, loads(0)), Memory()).memory
    zero = decide(policy, Observation(at(60), 1, loads(0)), memory)
    assert (zero.replicas, zero.reason) == (0, REASON_LOAD_DOWN)
    # Nothing read (a reconcile on the annotation's change), one replica at once.
    woken = decide(policy, Observation(at(100), 0, None, wake_token="w1"), zero.memory)
    assert (woken.replicas, woken.reason) == (1, REASON_WAKE)
    assert (woken.memory.wake_token, woken.memory.wake_seen_at) == ("w1", at(100))
    # While the replica starts it reads idle, but the wake is demand for the delay.
    starting = decide(policy, Observation(at(130), 1, []), woken.memory)
    assert not starting.changed and starting.memory.pending is None
    later = decide(policy, Observation(at(160), 1, loads(0)), starting.memory)
    assert later.memory.pending == Pending("down", at(160), 0)


def test_the_same_wake_token_seen_again_is_not_a_new_wake() -> None:
    memory = Memory(wake_token="w1", wake_seen_at=at(0))
    policy = Policy(0, 2, 2, scale_down_delay=timedelta(seconds=60))
    assert not decide(policy, Observation(at(61), 0, None, wake_token="w1"), memory).changed


def test_the_front_doors_clock_is_never_read() -> None:
    # A token is any text: its value is never compared with the operator's time.
    policy = Policy(0, 2, 2)
    woken = decide(policy, Observation(at(0), 0, None, wake_token="1999-01-01T00:00:00Z"), Memory())
    assert woken.replicas == 1


def test_out_of_bounds_goes_to_the_nearest_bound_at_once() -> None:
    above = decide(POLICY, Observation(at(0), 9, None), Memory(Pending("up", at(0), 9)))
    assert (above.replicas, above.reason, above.memory.pending) == (4, REASON_BOUNDS, None)
    below = decide(Policy(2, 3, 1), Observation(at(0), 0, None), Memory())
    assert below.replicas == 2


def test_without_loads_only_bounds_and_wake_apply() -> None:
    memory = Memory(pending=Pending("down", at(0), 1))
    same = decide(POLICY, Observation(at(600), 3, None), memory)
    assert not same.changed and same.memory == memory


def test_waiting_keeps_every_busy_replica_and_adds_one_per_target_queued() -> None:
    policy = Policy(1, 6, 2, metric="waiting", stabilization_window=timedelta(0))
    seen = [
        ReplicaLoad("p0", in_flight=3, running=2, waiting=3),
        ReplicaLoad("p1", in_flight=1, running=1, waiting=0),
        ReplicaLoad("p2", in_flight=0, running=0, waiting=0),
    ]
    decision = decide(policy, Observation(at(0), 3, seen), Memory())
    assert decision.inputs.recommendation == 2 + math.ceil(3 / 2)
    assert decision.replicas == 4
    assert "3 waiting, 3 running in vLLM" in decision.message


def test_waiting_counts_a_replica_whose_vllm_did_not_answer_as_busy() -> None:
    policy = Policy(1, 6, 2, metric="waiting")
    seen = [ReplicaLoad("p0", in_flight=0), ReplicaLoad("p1", in_flight=0)]
    assert decide(policy, Observation(at(0), 2, seen), Memory()).inputs.recommendation == 2


# -- properties over random histories ------------------------------------------------------------

STEP = 5  # seconds between passes, as the operator's default interval
histories = st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=120)
policies = st.builds(
    Policy,
    min_replicas=st.integers(0, 2),
    max_replicas=st.integers(2, 5),
    target=st.sampled_from([1.0, 2.0, 3.5]),
    scale_down_delay=st.sampled_from([timedelta(seconds=s) for s in (0, 15, 60)]),
    stabilization_window=st.sampled_from([timedelta(seconds=s) for s in (0, 10, 30)]),
)


def _run(policy: Policy, history: list[int]) -> list[tuple[datetime, int, int]]:
    """Pass after pass over ``history`` (total in flight, spread over the replicas); the
    changes made, as (time, from, to)."""
    replicas, memory, changes = policy.min_replicas, Memory(), []
    for step, total in enumerate(history):
        now = at(step * STEP)
        spread = [total / replicas] * replicas if replicas else []
        decision = decide(policy, Observation(now, replicas, loads(*spread)), memory)
        if decision.changed:
            changes.append((now, replicas, decision.replicas))
        replicas, memory = decision.replicas, decision.memory
        assert policy.min_replicas <= replicas <= policy.max_replicas
    return changes


@settings(max_examples=300, deadline=None)
@given(policies, histories)
def test_opposite_changes_are_never_closer_than_a_window(
    policy: Policy, history: list[int]
) -> None:
    changes = _run(policy, history)
    gap = min(policy.scale_down_delay, policy.stabilization_window)
    for (t1, a, b), (t2, c, d) in itertools.pairwise(changes):
        if (b > a) != (d > c) and not (c == 0 and d > 0):  # from zero is never held back
            assert t2 - t1 >= gap, changes


@settings(max_examples=300, deadline=None)
@given(policies, histories, st.integers(0, 5))
def test_a_pass_repeated_with_the_memory_it_wrote_changes_nothing(
    policy: Policy, history: list[int], replicas: int
) -> None:
    """An operator restarted after writing a decision runs the same pass again: same time,
    same loads, the level and memory it wrote. No second change; at most a new window opens
    (at that same moment: the first change ended the old one)."""
    memory = Memory()
    for step, total in enumerate(history):
        now = at(step * STEP)
        spread = loads(*([total / replicas] * replicas)) if replicas else []
        first = decide(policy, Observation(now, replicas, spread), memory)
        again = decide(policy, Observation(now, first.replicas, spread), first.memory)
        assert not again.changed
        assert again.memory == first.memory or again.memory.pending.since == now  # type: ignore[union-attr]
        replicas, memory = first.replicas, first.memory

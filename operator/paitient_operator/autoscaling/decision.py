"""How many replicas a ModelDeployment should have now: the native autoscaler's one decision
function (pure, no I/O, no clock of its own).

Level-based: everything it needs comes in as data — the policy (``spec.autoscaling``), what the
cluster shows (the Deployment's replicas, each replica's load as its gateway reported it, the
front door's wake request) and ``Memory``, the little it must remember between passes (kept in
``status.autoscaling``, so a restarted operator continues where the last one stopped). The same
inputs always give the same answer, so a pass repeated after a restart repeats no decision.

The rules:

- **Recommendation.** ``inFlight`` (default): ``ceil(Σ completions in flight / target)``.
  ``waiting``: every replica with work keeps its place, plus one per ``target`` requests queued
  in vLLM (``busy + ceil(Σ waiting / target)``). A front-door wake request counts as demand for
  one replica for ``scaleDownDelay`` after the operator first saw it. Clamped to
  [minReplicas, maxReplicas].
- **Out of bounds** (the spec changed): to the nearest bound at once.
- **From zero** on a wake request: to one at once; requests are being held.
- **Up**: once the recommendation has stayed above the current count for the whole
  ``stabilizationWindow``, to the lowest recommendation seen in that window.
- **Down**: once it has stayed below for the whole ``scaleDownDelay``, to the highest seen in
  that window. A replica whose load could not be read blocks scaling down (never remove what
  may be busy) but not scaling up.

So it never flaps: two opposite changes are at least one window apart, and a window restarts
whenever the recommendation crosses back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final, Literal

Metric = Literal["inFlight", "waiting"]
Direction = Literal["up", "down"]

REASON_BOUNDS: Final = "OutOfBounds"
REASON_WAKE: Final = "WokenByRequest"
REASON_LOAD_UP: Final = "LoadAboveTarget"
REASON_LOAD_DOWN: Final = "LoadBelowTarget"


@dataclass(frozen=True)
class Policy:
    """``spec.autoscaling`` of one deployment, in the units the decision uses."""

    min_replicas: int
    max_replicas: int
    target: float
    metric: Metric = "inFlight"
    scale_down_delay: timedelta = timedelta(minutes=5)
    stabilization_window: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class ReplicaLoad:
    """One replica's load as its gateway last reported it; NaN for what it could not say."""

    pod: str
    in_flight: float = math.nan
    running: float = math.nan
    waiting: float = math.nan
    draining: bool = False

    @property
    def known(self) -> bool:
        return not math.isnan(self.in_flight)


@dataclass(frozen=True)
class Pending:
    """A change the recommendation has asked for since ``since``; ``replicas`` is the lowest
    (up) or highest (down) it asked for meanwhile."""

    direction: Direction
    since: datetime
    replicas: int


@dataclass(frozen=True)
class Memory:
    """What a pass hands the next one (``status.autoscaling``)."""

    pending: Pending | None = None
    # The front door's wake token last seen, and when this operator first saw it.
    wake_token: str | None = None
    wake_seen_at: datetime | None = None


@dataclass(frozen=True)
class Observation:
    """What the cluster shows now. ``loads`` is None when nobody read them (a reconcile
    triggered by a change, not the autoscaler's pass): only the bounds and wake rules apply."""

    now: datetime
    replicas: int  # the Deployment's spec.replicas: the level this function moves
    loads: Sequence[ReplicaLoad] | None = None
    wake_token: str | None = None


@dataclass(frozen=True)
class Inputs:
    """What a decision was made from, for ``status.autoscaling.lastDecision``."""

    metric: Metric
    target: float
    replicas_read: int = 0
    in_flight: float = 0.0
    running: float = 0.0
    waiting: float = 0.0
    unread: int = 0
    woken: bool = False
    recommendation: int | None = None


@dataclass(frozen=True)
class Decision:
    """The replicas to have, why, and the memory to keep; ``changed`` when they differ from
    what the Deployment has."""

    replicas: int
    previous: int
    reason: str | None
    message: str
    memory: Memory
    inputs: Inputs = field(default_factory=lambda: Inputs("inFlight", 1.0))

    @property
    def changed(self) -> bool:
        return self.replicas != self.previous


def decide(policy: Policy, seen: Observation, memory: Memory) -> Decision:
    """The replicas ``policy`` asks for given ``seen`` and ``memory`` (pure)."""
    memory = _remember_wake(seen, memory)
    woken = _woken(policy, seen.now, memory)
    current = seen.replicas
    level = min(max(current, policy.min_replicas), policy.max_replicas)
    if level != current:  # the bounds moved: there first, and whatever the load says from there
        memory = replace(memory, pending=None)
    elif current == 0 and woken:
        message = "a request is waiting at the front door: starting one replica"
        inputs = Inputs(policy.metric, policy.target, woken=True)
        return Decision(1, 0, REASON_WAKE, message, replace(memory, pending=None), inputs)
    if seen.loads is None:
        return _from_level(policy, current, level, memory, Inputs(policy.metric, policy.target))
    inputs = _measure(policy, seen.loads, woken)
    wanted = inputs.recommendation if inputs.recommendation is not None else level
    if wanted > level:
        moved = _stabilised(policy, seen.now, level, wanted, "up", memory, inputs)
    elif wanted < level and inputs.unread:
        # A replica may be busy: no step towards removing one, and none undone.
        moved = Decision(level, level, None, "", memory, inputs)
    elif wanted < level:
        moved = _stabilised(policy, seen.now, level, wanted, "down", memory, inputs)
    else:
        moved = Decision(level, level, None, "", replace(memory, pending=None), inputs)
    if moved.changed or level == current:
        return replace(moved, previous=current)
    return _from_level(policy, current, level, moved.memory, inputs)


def _from_level(
    policy: Policy, current: int, level: int, memory: Memory, inputs: Inputs
) -> Decision:
    if level == current:
        return Decision(current, current, None, "", memory, inputs)
    message = f"{current} replicas is outside [{policy.min_replicas}, {policy.max_replicas}]"
    return Decision(level, current, REASON_BOUNDS, message, memory, inputs)


def _remember_wake(seen: Observation, memory: Memory) -> Memory:
    """A new wake token is timed by this operator's clock, never the front door's: clocks of
    two machines are never compared."""
    if seen.wake_token and seen.wake_token != memory.wake_token:
        return replace(memory, wake_token=seen.wake_token, wake_seen_at=seen.now)
    return memory


def _woken(policy: Policy, now: datetime, memory: Memory) -> bool:
    seen_at = memory.wake_seen_at
    return seen_at is not None and now - seen_at < policy.scale_down_delay


def _measure(policy: Policy, loads: Sequence[ReplicaLoad], woken: bool) -> Inputs:
    serving = [load for load in loads if not load.draining]
    known = [load for load in serving if load.known]
    in_flight = sum(load.in_flight for load in known)
    running = sum(_or_zero(load.running) for load in known)
    waiting = sum(_or_zero(load.waiting) for load in known)
    if policy.metric == "inFlight":
        wanted = math.ceil(in_flight / policy.target)
    else:
        # A replica whose vLLM did not answer counts as busy: never remove what may be working.
        busy = sum(1 for load in known if math.isnan(load.running) or load.running > 0)
        wanted = busy + math.ceil(waiting / policy.target)
    if woken:
        wanted = max(wanted, 1)
    wanted = min(max(wanted, policy.min_replicas), policy.max_replicas)
    return Inputs(
        policy.metric,
        policy.target,
        replicas_read=len(known),
        in_flight=in_flight,
        running=running,
        waiting=waiting,
        unread=len(serving) - len(known),
        woken=woken,
        recommendation=wanted,
    )


def _stabilised(
    policy: Policy,
    now: datetime,
    current: int,
    wanted: int,
    direction: Direction,
    memory: Memory,
    inputs: Inputs,
) -> Decision:
    pending = memory.pending
    if pending is None or pending.direction != direction:
        pending = Pending(direction, now, wanted)
    elif direction == "up":
        pending = replace(pending, replicas=min(pending.replicas, wanted))
    else:
        pending = replace(pending, replicas=max(pending.replicas, wanted))
    window = policy.stabilization_window if direction == "up" else policy.scale_down_delay
    if current == 0 and direction == "up":
        window = timedelta(0)  # from zero nothing serves: every moment waited is a client's
    if now - pending.since < window:
        return Decision(current, current, None, "", replace(memory, pending=pending), inputs)
    reason = REASON_LOAD_UP if direction == "up" else REASON_LOAD_DOWN
    return Decision(
        pending.replicas,
        current,
        reason,
        describe(inputs, current, pending.replicas),
        replace(memory, pending=None),
        inputs,
    )


def describe(inputs: Inputs, current: int, replicas: int) -> str:
    """One line for the Event and the status: what was seen, against what target."""
    if inputs.metric == "inFlight":
        load = f"{_number(inputs.in_flight)} completions in flight"
        per = "in flight per replica"
    else:
        load = f"{_number(inputs.waiting)} waiting, {_number(inputs.running)} running in vLLM"
        per = "waiting per replica"
    seen = f"over {inputs.replicas_read} replicas" if inputs.replicas_read else "with no replica"
    woken = "; a request waits at the front door" if inputs.woken else ""
    return (
        f"{current} -> {replicas} replicas: {load} {seen} (target {_number(inputs.target)} "
        f"{per}){woken}"
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _or_zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value

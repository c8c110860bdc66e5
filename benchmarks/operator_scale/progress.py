"""Waiting for hundreds of objects to turn Ready: progress lines, and a stop with the reason.

A benchmark that waits for what has already failed measures nothing. ``wait_all_ready`` prints
how many are Ready every few seconds and stops at once when one object reports a failure that
time will not fix (a refused spec, a pod that cannot be placed), or when no object's state has
changed for ``stall`` seconds, naming an object and the condition that holds it back. The state
functions (pure) read each kind's own way of saying Ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]
# Reasons of a ModelDeployment's Ready condition the benchmark cannot wait out: its nodes have
# room for every pod's GPU, so a pod no node can take is a broken set-up, not a slow one.
# ("Unschedulable" is not among them: the scheduler says so for a while of a pod whose claim is
# not bound yet; if that lasts, the stall stops the run.)
UNPLACEABLE = frozenset({"GPUCapacity"})


class BenchStopped(RuntimeError):
    """What the benchmark waited for failed or stalled; the message says which object and why."""


@dataclass(frozen=True)
class State:
    """Where one object stands: Ready, failed (``failure`` says why), or on its way (``detail``)."""

    name: str
    ready: bool
    detail: str = ""
    failure: str | None = None


def _condition(obj: Obj, kind: str) -> Mapping[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def _describe(condition: Mapping[str, Any]) -> str:
    if not condition:
        return "no Ready condition yet"
    return (
        f"Ready={condition.get('status')} {condition.get('reason', '')}: "
        f"{condition.get('message', '')}".rstrip(": ")
    )


def model_deployment_state(obj: Obj) -> State:
    """A ModelDeployment: Ready by its phase; failed when phase Failed (InvalidSpec, storage,
    tier) or its pods cannot be placed."""
    status = obj.get("status") or {}
    ready = _condition(obj, "Ready")
    detail = f"phase {status.get('phase', '-')}, {_describe(ready)}"
    if status.get("phase") == "Ready":
        return State(_name(obj), True, detail)
    if status.get("phase") == "Failed" or ready.get("reason") in UNPLACEABLE:
        return State(_name(obj), False, detail, failure=detail)
    return State(_name(obj), False, detail)


def tenant_state(obj: Obj) -> State:
    """A Tenant: Ready by its Ready condition; failed when the operator refused it."""
    ready = _condition(obj, "Ready")
    detail = _describe(ready)
    if ready.get("status") == "True":
        return State(_name(obj), True, detail)
    if ready.get("reason") in ("InvalidSpec", "TenantRefused"):
        return State(_name(obj), False, detail, failure=detail)
    return State(_name(obj), False, detail)


def kubeai_model_state(obj: Obj) -> State:
    """A KubeAI ``Model``: Ready once ``status.replicas.ready`` reaches ``spec.minReplicas``
    (KubeAI has no Ready condition; it counts ready pods)."""
    wanted = int((obj.get("spec") or {}).get("minReplicas") or 0)
    replicas = (obj.get("status") or {}).get("replicas") or {}
    ready, made = int(replicas.get("ready") or 0), int(replicas.get("all") or 0)
    detail = f"{ready}/{wanted} pods ready, {made} made"
    return State(_name(obj), wanted > 0 and ready >= wanted, detail)


def first_failure(states: Iterable[State]) -> State | None:
    return next((s for s in states if s.failure is not None), None)


def first_pending(states: Iterable[State]) -> State | None:
    return next((s for s in sorted(states, key=lambda s: s.name) if not s.ready), None)


@dataclass
class Waiter:
    """Polls ``sample`` (every object's state) until ``total`` are Ready."""

    what: str
    total: int
    sample: Callable[[], Sequence[State]]
    stall: float = 60.0
    timeout: float = 1800.0
    interval: float = 1.0
    every: float = 5.0
    out: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def wait(self, started: float) -> float:
        """Seconds from ``started`` (a ``clock`` reading) until all are Ready; raises
        ``BenchStopped`` on a failure, a stall or the timeout."""
        seen: frozenset[tuple[str, bool, str]] = frozenset()
        moved, said = self.clock(), 0.0
        while True:
            states = self.sample()
            now = self.clock()
            ready = sum(1 for s in states if s.ready)
            # Progress is any object's state changing (created, a replica up to date, Ready):
            # a burst may spend a while creating everything before the first turns Ready.
            fingerprint = frozenset((s.name, s.ready, s.detail) for s in states)
            if fingerprint != seen:
                seen, moved = fingerprint, now
            failed = first_failure(states)
            if failed is not None:
                raise BenchStopped(
                    f"{self.what}: {failed.name} failed after {now - started:.1f} s: "
                    f"{failed.failure} ({ready}/{self.total} Ready)"
                )
            if ready >= self.total:
                self.out(f"[{self.what}] {now - started:6.1f} s: all {self.total} Ready")
                return now - started
            if now - said >= self.every:
                said = now
                self.out(
                    f"[{self.what}] {now - started:6.1f} s: {ready}/{self.total} Ready, "
                    f"{len(states)} exist"
                )
            if now - moved > self.stall or now - started > self.timeout:
                pending = first_pending(states)
                example = f"; {pending.name}: {pending.detail}" if pending else ""
                why = (
                    f"nothing changed for {self.stall:.0f} s"
                    if now - moved > self.stall
                    else f"not all Ready within {self.timeout:.0f} s"
                )
                raise BenchStopped(
                    f"{self.what}: {why} ({ready}/{self.total} Ready, {len(states)} exist "
                    f"after {now - started:.1f} s){example}"
                )
            self.sleep(self.interval)

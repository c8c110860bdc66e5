"""The renewal schedule and worker: what is due is renewed, a failure stays due, a deleted
deployment is forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from paitient_operator.certificates.renewals import RenewalSchedule, RenewalWorker

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_only_what_is_due_is_renewed_and_a_failure_is_tried_again() -> None:
    schedule = RenewalSchedule()
    schedule.record("ns", "a", T0 + timedelta(days=20))
    schedule.record("ns", "b", T0 + timedelta(days=1))
    schedule.record("ns", "refused", None)
    now = T0
    renewed: list[tuple[str, str]] = []
    failing = {"b"}

    def renew(namespace: str, name: str) -> None:
        renewed.append((namespace, name))
        if name in failing:
            raise RuntimeError("API away")
        schedule.record(namespace, name, now + timedelta(days=20))  # as a reconcile would

    worker = RenewalWorker(schedule, renew, interval=60, clock=lambda: now)
    assert worker.tick() == 0
    now = T0 + timedelta(days=2)
    assert worker.tick() == 1 and renewed == [("ns", "b")]  # it failed: still due
    failing.clear()
    assert worker.tick() == 1 and renewed == [("ns", "b")] * 2
    assert worker.tick() == 0  # renewed: due again in 20 days
    schedule.forget("ns", "a")
    now = T0 + timedelta(days=30)
    assert schedule.due(now) == [("ns", "b")]


def test_the_worker_thread_stops() -> None:
    worker = RenewalWorker(RenewalSchedule(), lambda _ns, _n: None, interval=0.05)
    worker.start()
    worker.stop()
    assert worker._thread is not None and not worker._thread.is_alive()


def test_the_earliest_renewal_on_the_schedule() -> None:
    schedule = RenewalSchedule()
    assert schedule.earliest() is None
    now = datetime(2026, 5, 1, tzinfo=UTC)
    schedule.record("a", "x", now + timedelta(days=3))
    schedule.record("b", "y", now + timedelta(days=1))
    assert schedule.earliest() == now + timedelta(days=1)
    schedule.forget("b", "y")
    assert schedule.earliest() == now + timedelta(days=3)

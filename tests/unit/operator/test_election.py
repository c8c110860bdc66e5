"""Leader election: the Lease rules (pure) and the elector's steps against an in-memory API that
refuses a write carrying a stale resourceVersion, as the API server does."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from paitient_common.kubeapi import KubeError
from paitient_common.settings import SettingsError
from paitient_operator.config import LeaderElectionConfig, load_config
from paitient_operator.election import lease as leases
from paitient_operator.election.elector import LeaderElector
from paitient_operator.metrics import LEADER

WALL = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = LeaderElectionConfig()  # 10 s / 7 s / 2 s


class LeaseApi:
    """One Lease, with resourceVersion checks; ``down`` makes every call fail as a timeout."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.version = 0
        self.down = False
        self.writes = 0

    def _check(self) -> None:
        if self.down:
            raise TimeoutError("read timed out")

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        self._check()
        return copy.deepcopy(self.obj)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if self.obj is not None:
            raise KubeError(409, "AlreadyExists", "leases exists")
        return self._store(obj)

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> dict[str, Any]:
        self._check()
        assert method == "PUT" and path.endswith("/leases/paitient-operator"), (method, path)
        assert self.obj is not None
        if body["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "the object has been modified")
        return self._store(body)

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.writes += 1
        self.obj = copy.deepcopy(obj)
        self.obj["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.obj)

    @property
    def record(self) -> leases.LeaseRecord:
        assert self.obj is not None
        return leases.record_of(self.obj)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(api: LeaseApi, clock: Clock, name: str, lost: list[str] | None = None) -> LeaderElector:
    return LeaderElector(
        api,  # type: ignore[arg-type]
        "paitient-system",
        SETTINGS,
        name,
        on_lost=lambda: (lost if lost is not None else []).append(name),
        clock=clock,
        wall=lambda: WALL + timedelta(seconds=clock.now),
    )


# -- the rules, pure -------------------------------------------------------------------------------


def test_a_lease_round_trips_through_its_object() -> None:
    record = leases.LeaseRecord("op-a_1", 10, WALL, WALL + timedelta(seconds=4), 3)
    obj = leases.build_lease("paitient-system", "paitient-operator", record, "42")
    assert obj["metadata"]["resourceVersion"] == "42"
    assert obj["spec"]["renewTime"] == "2026-12-01T12:00:04.000000Z"  # metav1.MicroTime
    assert leases.record_of(obj) == record
    assert leases.record_of({}) == leases.LeaseRecord("", 0)


@pytest.mark.parametrize(
    ("holder", "seen_ago", "mine"),
    [
        ("", 0.0, True),  # released: take it at once
        ("me", 0.0, True),  # a renewal
        ("other", 9.9, False),  # the holder may still renew
        ("other", 10.0, True),  # not renewed for the whole duration, on this replica's clock
    ],
)
def test_who_may_take_the_lease(holder: str, seen_ago: float, mine: bool) -> None:
    current = leases.LeaseRecord(holder, 10, WALL, WALL, 2)
    claimed = leases.claim(current, "me", 10, observed_at=100.0, now=100.0 + seen_ago, wall=WALL)
    assert (claimed is not None) is mine
    if claimed is not None:
        assert claimed.holder == "me"
        # a takeover counts a transition; a renewal keeps when it was acquired
        assert claimed.transitions == (2 if holder == "me" else 3)


def test_releasing_hands_the_lease_to_nobody_for_a_second() -> None:
    released = leases.released(leases.LeaseRecord("me", 10, WALL, WALL, 5), WALL)
    assert (released.holder, released.duration_seconds, released.transitions) == ("", 1, 5)


def test_leader_election_settings_are_ordered_and_read_from_the_environment() -> None:
    config = load_config({"PAITIENT_LEADER_ELECTION_LEASE_DURATION_SECONDS": "15",
                          "PAITIENT_LEADER_ELECTION_ENABLED": "false"})  # fmt: skip
    assert config.leader_election.lease_duration_seconds == 15
    assert config.leader_election.enabled is False
    with pytest.raises(ValueError, match="renewDeadlineSeconds < leaseDurationSeconds"):
        LeaderElectionConfig(lease_duration_seconds=5, renew_deadline_seconds=7)
    # Through the loader: one message naming the section, as the operator prints it (exit 2).
    with pytest.raises(SettingsError) as refused:
        load_config({"PAITIENT_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": "12"})
    assert str(refused.value).startswith(
        "leaderElection: retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds"
    )


# -- the elector's steps ---------------------------------------------------------------------------


def test_the_first_candidate_leads_and_the_second_stands_by_until_the_lease_lapses() -> None:
    api, clock = LeaseApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert a.try_once() is True
    assert b.try_once() is False and b.holder == "a"
    clock.now += 5
    assert a.try_once() is True  # a renews: b's wait starts again from what it sees next
    assert b.try_once() is False
    clock.now += 9.9
    assert b.try_once() is False  # a stopped renewing 9.9 s ago (b's clock): not yet
    clock.now += 0.1
    assert b.try_once() is True
    assert (api.record.holder, api.record.transitions) == ("b", 1)
    assert a.try_once() is False and a.holder == "b"


def test_a_released_lease_is_taken_at_the_next_try() -> None:
    api, clock = LeaseApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert a.try_once()
    a.leading.set()
    a.stop(release=True)
    assert api.record.holder == ""
    assert b.try_once() is True


def test_of_two_writes_from_one_read_only_one_lands() -> None:
    api, clock = LeaseApi(), Clock()
    elector(api, clock, "a").try_once()
    clock.now += 10  # lapsed for both standbys
    b, c = elector(api, clock, "b"), elector(api, clock, "c")
    b.try_once(), c.try_once()  # both saw it first now: both wait
    clock.now += 10
    stale = copy.deepcopy(api.obj)
    assert b.try_once() is True
    # c read before b wrote: its write carries the old version and is refused.
    original_get = api.get
    api.get = lambda *a, **k: copy.deepcopy(stale)  # type: ignore[method-assign]
    assert c.try_once() is False
    api.get = original_get  # type: ignore[method-assign]
    assert api.record.holder == "b"


def test_an_unreachable_api_is_a_failed_try_and_a_leader_past_its_deadline_lets_go() -> None:
    api, clock = LeaseApi(), Clock()
    lost: list[str] = []
    a = elector(api, clock, "a", lost)
    assert a.try_once()
    a.leading.set()
    LEADER.set(1)
    api.down = True
    assert a.try_once() is False
    clock.now += SETTINGS.renew_deadline_seconds  # no renewal for the whole deadline
    a._watch_deadline()  # the watchdog, run here: the deadline has passed
    assert lost == ["a"]
    assert not a.leading.is_set()
    assert LEADER._value.get() == 0  # type: ignore[attr-defined]


def test_a_leader_that_sees_another_holder_lets_go_at_once() -> None:
    api, clock = LeaseApi(), Clock()
    lost: list[str] = []
    a = elector(api, clock, "a", lost)
    assert a.try_once()
    a.leading.set()
    # b took it (e.g. a was cut off from the API for longer than the lease duration)
    assert api.obj is not None
    api.obj["spec"]["holderIdentity"] = "b"
    a.config = LeaderElectionConfig(
        lease_duration_seconds=3, renew_deadline_seconds=2, retry_period_seconds=1
    )
    renewer = threading.Thread(target=a._renew)  # its first turn (1 s) sees b and stops
    renewer.start()
    renewer.join(timeout=5)
    assert not renewer.is_alive()
    assert lost == ["a"]

"""set_condition keeps metav1.Condition semantics; phase_from maps Ready to a phase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paitient_operator import conditions as c

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_adds_a_condition_in_metav1_shape() -> None:
    conds = c.set_condition([], c.TYPE_READY, False, c.REASON_PROGRESSING, "0/1 ready", 3, T0)
    assert conds == [{
        "type": "Ready", "status": "False", "reason": "Progressing", "message": "0/1 ready",
        "lastTransitionTime": "2025-01-01T12:00:00Z", "observedGeneration": 3,
    }]  # fmt: skip


def test_transition_time_moves_only_when_status_flips() -> None:
    first = c.set_condition([], "Ready", False, "Progressing", "0/1", 1, T0)
    same_status = c.set_condition(first, "Ready", False, "GPUCapacity", "no GPU", 2, T1)
    assert same_status[0]["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    assert same_status[0]["reason"] == "GPUCapacity"
    assert same_status[0]["observedGeneration"] == 2
    flipped = c.set_condition(same_status, "Ready", True, "Ready", "1/1", 2, T1)
    assert flipped[0]["lastTransitionTime"] == "2025-01-01T12:05:00Z"


def test_unchanged_input_gives_an_equal_list_and_does_not_mutate() -> None:
    first = c.set_condition([], "Ready", True, "Ready", "1/1", 1, T0)
    snapshot = [dict(x) for x in first]
    again = c.set_condition(first, "Ready", True, "Ready", "1/1", 1, T1)
    assert again == first == snapshot
    assert again is not first


def test_other_conditions_keep_their_order() -> None:
    conds = c.set_condition([], "SpecValid", True, "Valid", "", 1, T0)
    conds = c.set_condition(conds, "Ready", False, "Progressing", "", 1, T0)
    conds = c.set_condition(conds, "SpecValid", False, "InvalidSpec", "bad", 2, T1)
    assert [x["type"] for x in conds] == ["SpecValid", "Ready"]
    assert c.get_condition(conds, "SpecValid") == conds[0]
    assert c.remove_condition(conds, "SpecValid") == [conds[1]]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("Ready", "yes", "Ready"), "status"),
        (("Ready", True, "not a reason"), "reason"),
        (("has space", True, "Ready"), "type"),
    ],
)
def test_refuses_what_the_api_server_would(args: tuple[str, object, str], match: str) -> None:
    type_, status, reason = args
    with pytest.raises(ValueError, match=match):
        c.set_condition([], type_, status, reason, "", None, T0)  # type: ignore[arg-type]


def test_naive_times_are_refused_and_strings_pass_through() -> None:
    with pytest.raises(ValueError, match="timezone"):
        c.format_time(datetime(2025, 1, 1))
    assert c.format_time("2025-01-01T00:00:00Z") == "2025-01-01T00:00:00Z"


def test_status_accepts_strings_and_unknown() -> None:
    conds = c.set_condition([], "Ready", "Unknown", "Pending", "", None, T0)
    assert conds[0]["status"] == "Unknown"
    assert "observedGeneration" not in conds[0]


@pytest.mark.parametrize(
    ("status", "reason", "phase"),
    [
        (True, c.REASON_READY, c.PHASE_READY),
        (False, c.REASON_INVALID_SPEC, c.PHASE_FAILED),
        (False, c.REASON_STORAGE_NOT_ENCRYPTED, c.PHASE_FAILED),
        (False, c.REASON_TIER_LIMIT_EXCEEDED, c.PHASE_FAILED),
        (False, c.REASON_GPU_CAPACITY, c.PHASE_PENDING),
        (False, c.REASON_UNSCHEDULABLE, c.PHASE_PENDING),
        (False, c.REASON_DEGRADED, c.PHASE_DEGRADED),
        (False, c.REASON_PROGRESSING, c.PHASE_PROGRESSING),
    ],
)
def test_phase_from_ready(status: bool, reason: str, phase: str) -> None:
    assert c.phase_from(c.set_condition([], c.TYPE_READY, status, reason, "", 1, T0)) == phase


def test_no_ready_condition_is_pending() -> None:
    assert c.phase_from([]) == c.PHASE_PENDING
    assert c.phase_from(None) == c.PHASE_PENDING


def test_reasons_are_valid_condition_reasons() -> None:
    reasons = [v for k, v in vars(c).items() if k.startswith("REASON_")]
    assert len(reasons) >= 10
    for reason in reasons:
        c.set_condition([], "Ready", False, reason, "", None, T0)  # raises if malformed

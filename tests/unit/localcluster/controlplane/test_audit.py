"""Audit-log reading and the audit policy."""

from __future__ import annotations

import json
from pathlib import Path

from paitient_localcluster.controlplane.audit import POLICY, log_size, read_events, writes_by


def _event(user: str, verb: str, stage: str = "ResponseComplete") -> str:
    return json.dumps(
        {
            "stage": stage,
            "verb": verb,
            "user": {"username": user},
            "objectRef": {"resource": "deployments", "namespace": "ns", "name": "d"},
            "responseStatus": {"code": 200},
        }
    )


def test_writes_are_counted_per_user_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(_event("paitient-operator", "patch") + "\n")
    offset = log_size(log)
    with log.open("a") as fh:
        for line in (
            _event("paitient-operator", "get"),
            _event("paitient-operator", "create"),
            _event("paitient-operator", "create", stage="ResponseStarted"),
            _event("someone-else", "delete"),
            "not json",
        ):
            fh.write(line + "\n")
    writes = writes_by(read_events(log, offset), "paitient-operator")
    assert [(w.verb, w.resource) for w in writes] == [("create", "deployments")]


def test_policy_leaves_out_the_control_plane_and_simulated_infrastructure() -> None:
    silenced = {u for r in POLICY["rules"] if r["level"] == "None" for u in r.get("users", [])}
    assert {"system:kube-controller-manager", "system:kube-scheduler", "paitient-kwok"} <= silenced
    assert POLICY["rules"][-1] == {"level": "Metadata"}


def test_an_event_keeps_when_the_api_server_received_and_answered_it(tmp_path: Path) -> None:
    raw = json.loads(_event("gateway", "patch"))
    raw |= {
        "requestReceivedTimestamp": "2026-12-07T13:05:01.123456Z",
        "stageTimestamp": "2026-12-07T13:05:01.130001Z",
    }
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(raw) + "\n" + _event("gateway", "get") + "\n")
    timed, untimed = read_events(log)
    assert timed.received is not None and timed.completed is not None
    assert (timed.completed - timed.received).total_seconds() == 0.006545
    assert timed.received.tzinfo is not None
    assert (untimed.received, untimed.completed) == (None, None)

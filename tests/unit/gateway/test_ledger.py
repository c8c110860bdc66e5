"""The usage ledger: append, replay, de-duplicate, survive a torn line."""

from __future__ import annotations

from pathlib import Path

from paitient_gateway.ledger import UsageCounters, UsageLedger, UsageRecord, read_ledger_lines


def rec(rid: str, tenant: str = "acme", prompt: int = 3, completion: int = 5) -> UsageRecord:
    return UsageRecord(rid, tenant, "keyid", "2026-11-01T00:00:00Z", prompt, completion, "t1")


def test_replay_resumes_the_counters_exactly(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path)
    ledger.open()
    assert ledger.append(rec("r1"))
    assert ledger.append(rec("r2", prompt=10, completion=1))
    assert ledger.append(rec("r3", tenant="beta"))
    ledger.close()  # no sync needed: what was written survives the process

    again = UsageLedger(tmp_path)
    assert again.open() == 3
    acme = again.counters.entries[("acme", "2026-11-01T00:00:00Z")]
    assert (acme.prompt_tokens, acme.completion_tokens, acme.requests) == (13, 6, 2)
    assert again.counters.total("beta", "2026-11-01T00:00:00Z") == 8
    assert again.counters.key_last_used == {"keyid": "t1"}


def test_a_request_id_counts_once_even_when_written_twice(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path)
    ledger.open()
    assert ledger.append(rec("r1"))
    assert not ledger.append(rec("r1"))  # refused in process
    ledger.close()
    # ... and if a copy reached the disk anyway (e.g. two files), replay counts it once.
    path = next(tmp_path.glob("usage-*.jsonl"))
    (tmp_path / "usage-0000-00-00.jsonl").write_bytes(path.read_bytes())
    again = UsageLedger(tmp_path)
    assert again.open() == 1
    assert again.counters.total("acme", "2026-11-01T00:00:00Z") == 8


def test_a_torn_last_line_is_skipped_and_closed(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path)
    ledger.open()
    ledger.append(rec("r1"))
    ledger.close()
    path = next(tmp_path.glob("usage-*.jsonl"))
    with path.open("ab") as f:
        f.write(b'{"request_id":"r2","tenant":"ac')
    again = UsageLedger(tmp_path)
    assert again.open() == 1
    again.append(rec("r3"))
    again.close()
    third = UsageLedger(tmp_path)
    assert third.open() == 2


def test_foreign_lines_are_skipped() -> None:
    assert read_ledger_lines(b"not json\n{}\n\n") == []


def test_counters_keep_the_latest_key_use() -> None:
    counters = UsageCounters()
    counters.add(UsageRecord("a", "t", "k", "p", 1, 1, "2026-01-02T00:00:00Z"))
    counters.add(UsageRecord("b", "t", "k", "p", 1, 1, "2026-01-01T00:00:00Z"))
    assert counters.key_last_used["k"] == "2026-01-02T00:00:00Z"

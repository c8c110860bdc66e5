"""The ledger's fsync bound (docs/gateway.md, "Ledger first"), on a fake clock with the fsync
injected: every line is fsynced by an fsync that starts at most 50 ms after the line was written,
or at once when 64 lines wait (in both cases after an fsync still running), never an fsync with
nothing to sync, whatever the write pattern and however slow the disk."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paitient_gateway.ledger import UsageLedger, UsageRecord
from tests.unit.fake_clock import run_on_fake_clock

INTERVAL, BATCH = 0.05, 64  # the defaults the docs promise
EPSILON = 1e-9


@dataclass
class Timeline:
    """What happened, in the order it happened: ("write", t), ("sync", start, end)."""

    writes: list[float] = field(default_factory=list)
    # (start, end, lines written before the start)
    syncs: list[tuple[float, float, int]] = field(default_factory=list)
    descriptors: set[int] = field(default_factory=set)


def _record(n: int) -> UsageRecord:
    return UsageRecord(f"req-{n}", "acme", "key", "2026-01-01T00:00:00Z", 3, 4, "t")


def _gaps(pattern: str) -> list[float]:
    """Seconds before each write; 0 is the same instant (same turn of the loop)."""
    rng = random.Random(pattern)
    if pattern == "sparse":
        return [rng.uniform(0.03, 0.12) for _ in range(60)]
    if pattern == "steady":
        return [0.0005] * 600  # 100 lines in 50 ms: the batch of 64 decides
    if pattern == "bursts":
        return [0.0 if i % 100 else rng.uniform(0.005, 0.2) for i in range(600)]
    return [rng.choice([0.0, 0.0005, 0.004, 0.02, 0.07]) for _ in range(1500)]  # "mixed"


def _run(tmp_path: Path, gaps: list[float], fsync_seconds: float) -> Timeline:
    timeline = Timeline()

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def fsync(fd: int) -> None:
            start = loop.time()
            timeline.descriptors.add(fd)
            written = len(timeline.writes)
            await asyncio.sleep(fsync_seconds)
            timeline.syncs.append((start, loop.time(), written))

        ledger = UsageLedger(tmp_path, INTERVAL, BATCH, fsync=fsync, clock=loop.time)
        ledger.open()
        syncer = asyncio.create_task(ledger.run_syncer())
        try:
            for n, gap in enumerate(gaps):
                if gap:
                    await asyncio.sleep(gap)
                assert ledger.append(_record(n))
                timeline.writes.append(loop.time())
            await asyncio.sleep(10 * (INTERVAL + fsync_seconds))  # the last lines' fsync
            if timeline.descriptors:  # the day's file, the one the lines went to
                day = tmp_path / f"usage-{datetime.now(UTC):%Y-%m-%d}.jsonl"
                assert {os.fstat(fd).st_ino for fd in timeline.descriptors} == {day.stat().st_ino}
        finally:
            syncer.cancel()
            ledger.close()

    run_on_fake_clock(main())
    return timeline


def _late_syncs(timeline: Timeline) -> list[str]:
    """Each fsync that started later than the bound allowed, with why (pure)."""
    late, covered, previous_end = [], 0, float("-inf")
    for start, end, written in timeline.syncs:
        waiting = timeline.writes[covered:written]
        if not waiting:
            late.append(f"an fsync at {start:.4f} s with no line waiting")
            continue
        due = waiting[0] + INTERVAL
        if len(waiting) >= BATCH:
            due = min(due, waiting[BATCH - 1])
        allowed = max(due, previous_end)
        if start > allowed + EPSILON:
            late.append(
                f"fsync at {start:.4f} s: {len(waiting)} lines waiting, the oldest since "
                f"{waiting[0]:.4f} s; due at {allowed:.4f} s"
            )
        covered, previous_end = written, end
    if covered != len(timeline.writes):
        late.append(f"{len(timeline.writes) - covered} lines never fsynced")
    return late


@pytest.mark.parametrize("fsync_ms", [0, 2, 30, 80])
@pytest.mark.parametrize("pattern", ["sparse", "steady", "bursts", "mixed"])
def test_every_line_is_fsynced_within_50_ms_or_64_lines(
    tmp_path: Path, pattern: str, fsync_ms: int
) -> None:
    timeline = _run(tmp_path, _gaps(pattern), fsync_ms / 1000)
    assert timeline.syncs, "nothing was fsynced"
    late = _late_syncs(timeline)
    assert not late, "\n".join(late[:10])


def test_a_full_batch_is_fsynced_at_once_and_a_lone_line_after_50_ms(tmp_path: Path) -> None:
    """The two triggers, exactly: 64 lines in one instant start an fsync in that instant; one
    line alone waits the interval, not less."""
    timeline = _run(tmp_path, [0.0] * BATCH + [1.0], fsync_seconds=0.0)
    (batch_start, _, batch_lines), (lone_start, _, lone_lines) = timeline.syncs
    assert (batch_start, batch_lines) == (0.0, BATCH)
    assert lone_lines == BATCH + 1
    assert lone_start == pytest.approx(timeline.writes[-1] + INTERVAL)


def test_an_idle_ledger_never_fsyncs(tmp_path: Path) -> None:
    assert _run(tmp_path, [], fsync_seconds=0.0).syncs == []

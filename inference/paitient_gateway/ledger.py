"""The usage ledger: every request's usage on disk before it counts, and the counters built from it.

Each settled request appends one JSON line (keyed by its request id) with ``os.write`` on an
``O_APPEND`` descriptor before the client gets the last byte of its answer: once written, the
line is in the kernel's page cache and survives the gateway being killed. A background task
``fsync``s in small batches, which only matters for a kernel or node crash: at most
``sync_interval`` seconds after the oldest line not yet synced was written, or at once when
``sync_batch`` lines wait (in both cases after the fsync in progress, if one is). On start the
files are replayed, torn last lines skipped and request ids de-duplicated, so the counters resume
exactly where they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("paitient.gateway.ledger")


@dataclass(frozen=True)
class UsageRecord:
    """One request's usage, as billed."""

    request_id: str
    tenant: str
    key_id: str
    period_start: str
    prompt_tokens: int
    completion_tokens: int
    time: str

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_line(self) -> bytes:
        # vars() rather than dataclasses.asdict: asdict deep-copies, and this runs per request.
        return (json.dumps(vars(self), separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRecord:
        return cls(
            request_id=str(data["request_id"]),
            tenant=str(data["tenant"]),
            key_id=str(data.get("key_id", "")),
            period_start=str(data["period_start"]),
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
            time=str(data["time"]),
        )


@dataclass
class Counter:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageCounters:
    """Cumulative counters per (tenant, period start), and the last use of each key (pure)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Counter] = {}
        self.key_last_used: dict[str, str] = {}
        self._seen: set[str] = set()

    def add(self, record: UsageRecord) -> bool:
        """Count a record once; False for a request id already counted."""
        if record.request_id in self._seen:
            return False
        self._seen.add(record.request_id)
        counter = self.entries.setdefault((record.tenant, record.period_start), Counter())
        counter.prompt_tokens += record.prompt_tokens
        counter.completion_tokens += record.completion_tokens
        counter.requests += 1
        if record.key_id and record.time > self.key_last_used.get(record.key_id, ""):
            self.key_last_used[record.key_id] = record.time
        return True

    def seen(self, request_id: str) -> bool:
        return request_id in self._seen

    def total(self, tenant: str, period_start: str) -> int:
        counter = self.entries.get((tenant, period_start))
        return counter.total if counter is not None else 0


def read_ledger_lines(raw: bytes) -> list[UsageRecord]:
    """Records of one file; a torn or foreign line is skipped, not fatal."""
    records = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            records.append(UsageRecord.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            log.warning("skipping an unreadable ledger line (%d bytes)", len(line))
    return records


async def fsync_in_thread(fd: int) -> None:
    """``os.fsync`` off the event loop: a slow disk must not stall the requests."""
    await asyncio.to_thread(os.fsync, fd)


class UsageLedger:
    """Append-only JSON-lines files in ``directory`` (one per UTC day), and their counters.

    ``fsync`` and ``clock`` are the background sync's disk and time (tests give a fake clock and
    record the syncs); ``clock`` must be the event loop's (``time.monotonic`` by default)."""

    def __init__(
        self,
        directory: Path,
        sync_interval: float = 0.05,
        sync_batch: int = 64,
        *,
        fsync: Callable[[int], Awaitable[None]] = fsync_in_thread,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.sync_interval = sync_interval
        self.sync_batch = sync_batch
        self.counters = UsageCounters()
        self._fd: int | None = None
        self._fd_day = ""
        self._fsync = fsync
        self._clock = clock
        self._unsynced = 0
        self._oldest_unsynced = 0.0  # when the oldest line not yet synced was written
        self._waiting = asyncio.Event()  # a line waits for its fsync
        self._batch_full = asyncio.Event()  # sync_batch lines wait
        self.last_sync_seconds = 0.0
        self.ledger_id = ""

    def _identity(self) -> str:
        """This ledger's name, made once with its directory: the shared store keys this
        ledger's cumulative counters by it, so a restart on the same ledger continues its
        counters and two ledgers never share one."""
        path = self.directory / "ledger-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            ledger_id = uuid.uuid4().hex[:16]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(ledger_id)
            tmp.replace(path)
            return ledger_id

    def open(self) -> int:
        """Create the directory and replay every file; returns the records replayed."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ledger_id = self._identity()
        replayed = 0
        for path in sorted(self.directory.glob("usage-*.jsonl")):
            raw = path.read_bytes()
            if raw and not raw.endswith(b"\n"):
                # A torn last line (power loss mid-write): end it so the next append stays whole.
                with path.open("ab") as f:
                    f.write(b"\n")
            for record in read_ledger_lines(raw):
                replayed += self.counters.add(record)
        return replayed

    def _descriptor(self, now: datetime) -> int:
        day = now.strftime("%Y-%m-%d")
        if self._fd is None or day != self._fd_day:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
            path = self.directory / f"usage-{day}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._fd_day = day
        return self._fd

    def append(self, record: UsageRecord) -> bool:
        """Write, then count. False (and nothing written) for a request id already counted."""
        if self.counters.seen(record.request_id):
            return False
        line = record.to_line()
        fd = self._descriptor(datetime.now(UTC))
        written = os.write(fd, line)
        while written < len(line):  # a regular file writes whole, but do not rely on it
            written += os.write(fd, line[written:])
        self.counters.add(record)
        if self._unsynced == 0:
            self._oldest_unsynced = self._clock()
            self._waiting.set()
        self._unsynced += 1
        if self._unsynced >= self.sync_batch:
            self._batch_full.set()
        return True

    def _take_unsynced(self) -> int | None:
        """The descriptor to fsync for the lines waiting now (None when none wait); lines
        appended from here on wait for the next fsync."""
        self._unsynced = 0
        self._waiting.clear()
        self._batch_full.clear()
        return self._fd

    def sync(self) -> None:
        if self._unsynced and (fd := self._take_unsynced()) is not None:
            os.fsync(fd)

    async def run_syncer(self) -> None:
        """fsync ``sync_interval`` seconds after the oldest waiting line was written, or as
        soon as ``sync_batch`` lines wait; never while nothing waits."""
        loop = asyncio.get_running_loop()
        while True:
            await self._waiting.wait()
            delay = self._oldest_unsynced + self.sync_interval - self._clock()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_full.wait(), delay)
            fd = self._take_unsynced()
            if fd is None:
                continue
            start = loop.time()
            with contextlib.suppress(OSError):  # the day's file rotated meanwhile
                await self._fsync(fd)
            self.last_sync_seconds = loop.time() - start

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

"""The figures read from the API server's audit log and the controllers' processes (pure, but for
the /proc and HTTP readers at the end)."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from paitient_localcluster.controlplane.audit import AuditEvent


def resource_of(event: AuditEvent) -> str:
    return event.resource + (f"/{event.subresource}" if event.subresource else "")


@dataclass(frozen=True)
class Requests:
    """One identity's API requests over a stretch of the audit log."""

    events: Sequence[AuditEvent]

    @classmethod
    def of(cls, events: Iterable[AuditEvent], users: Iterable[str]) -> Requests:
        wanted = set(users)
        return cls([e for e in events if e.user in wanted])

    @property
    def total(self) -> int:
        return len(self.events)

    @property
    def writes(self) -> list[AuditEvent]:
        return [e for e in self.events if e.is_write]

    def by_verb(self) -> dict[str, int]:
        return dict(collections.Counter(e.verb for e in self.events).most_common())

    def by_verb_and_resource(self) -> list[tuple[str, str, int]]:
        counts = collections.Counter((e.verb, resource_of(e)) for e in self.events)
        return [(verb, resource, n) for (verb, resource), n in counts.most_common()]

    def writes_by_resource(self, *, events: bool = True) -> dict[str, int]:
        """Writes per resource; ``events=False`` leaves out the Events a controller posts."""
        counts = collections.Counter(
            f"{e.verb} {resource_of(e)}" for e in self.writes if events or e.resource != "events"
        )
        return dict(counts.most_common())

    def failed(self) -> dict[str, int]:
        """Requests answered with an error status, by verb, resource and code (a 409 is a
        create that lost a race, a 404 a read of something not there)."""
        counts = collections.Counter(
            f"{e.verb} {resource_of(e)} -> {e.code}" for e in self.events if e.code >= 400
        )
        return dict(counts.most_common())


@dataclass
class Burst:
    """What one burst of ``count`` objects cost."""

    count: int
    applied_s: float
    wall_s: float
    requests: Requests
    reconciles: float | None = None
    rss_mib: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU each process used meanwhile

    def per_object(self, n: int) -> float:
        return n / self.count if self.count else 0.0

    def summary(self) -> dict[str, object]:
        writes = self.requests.writes
        no_events = [e for e in writes if e.resource != "events"]
        out: dict[str, object] = {
            "count": self.count,
            "wall_s": round(self.wall_s, 1),
            "requests": self.requests.total,
            "requests_per_object": round(self.per_object(self.requests.total), 1),
            "writes_per_object": round(self.per_object(len(writes)), 2),
            "writes_per_object_without_events": round(self.per_object(len(no_events)), 2),
            "by_verb": self.requests.by_verb(),
        }
        if self.reconciles:
            out["reconciles"] = self.reconciles
            out["requests_per_reconcile"] = round(self.requests.total / self.reconciles, 2)
        if self.rss_mib:
            out["rss_mib"] = {k: round(v) for k, v in self.rss_mib.items()}
        if self.cpu_s:
            out["cpu_s"] = {k: round(v, 1) for k, v in self.cpu_s.items()}
        return out

    def lines(self, what: str) -> list[str]:
        """The human report of the burst."""
        req = self.requests
        writes = req.writes
        lines = [
            f"{what}: {self.count} created in {self.applied_s:.1f} s, all Ready after "
            f"{self.wall_s:.1f} s",
            f"  API requests: {req.total} = {self.per_object(req.total):.1f} per object; "
            + ", ".join(f"{verb} {n}" for verb, n in req.by_verb().items()),
        ]
        if self.reconciles:
            lines.append(
                f"  reconciles: {self.reconciles:.0f} = {self.per_object(int(self.reconciles)):.1f} "
                f"per object; {req.total / self.reconciles:.2f} API requests per reconcile"
            )
        lines.append(
            f"  writes: {len(writes)} = {self.per_object(len(writes)):.2f} per object "
            f"({self.per_object(len([e for e in writes if e.resource != 'events'])):.2f} "
            "without Events)"
        )
        lines += [f"    {n:6d}  {w}" for w, n in req.writes_by_resource().items()]
        failed = req.failed()
        if failed:
            lines.append(
                "  answered with an error: " + ", ".join(f"{k} x{n}" for k, n in failed.items())
            )
        lines.append("  requests by verb and resource:")
        lines += [f"    {n:6d}  {verb:<7} {res}" for verb, res, n in req.by_verb_and_resource()]
        for who, mib in self.rss_mib.items():
            lines.append(f"  resident memory of {who}: {mib:.0f} MiB")
        if self.cpu_s:
            lines.append(
                "  CPU used meanwhile: "
                + ", ".join(f"{who} {s:.1f} s" for who, s in self.cpu_s.items())
                + f" (wall {self.wall_s:.1f} s, 2 cores)"
            )
        return lines


def rss_mib(pid: int) -> float:
    """``VmRSS`` of a process, in MiB (0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU seconds of named processes between ``start`` and ``read`` (a process that is gone
    counts what it used while it ran)."""

    pids: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)

    def start(self) -> CpuMeter:
        self._start = {who: cpu_seconds(pid) for who, pid in self.pids.items()}
        return self

    def read(self) -> dict[str, float]:
        return {who: cpu_seconds(pid) - self._start.get(who, 0.0) for who, pid in self.pids.items()}


def load_average() -> str:
    """The machine's 1/5/15-minute load averages, as /proc/loadavg says them."""
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])

"""Each replica's load as this front door knows it: what its gateway last reported (every
caller's requests, vLLM's queue), moved on by this front door's own requests since.

A gateway's report is at most a poll old, so requests this front door started or finished since
are added or taken off (they are exact: they are its own). Between two polls a burst from this
front door therefore spreads as if the gateways had seen it; a burst from another front door
shows at the next poll. Without a recent report (a gateway that does not answer its load), the
load is this front door's own requests only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from paitient_common.gateway_load import GatewayLoad

Clock = Callable[[], float]
REPORT_MAX_AGE = 2.0  # seconds: an older report says nothing about now


@dataclass
class ReplicaLoad:
    """One replica, by the URL this front door dials."""

    local: int = 0  # this front door's requests in flight to it
    reported: GatewayLoad | None = None
    reported_at: float = 0.0
    local_at_report: int = 0  # ``local`` when the report was asked for

    def draining(self, now: float, max_age: float = REPORT_MAX_AGE) -> bool:
        """Its gateway said it is stopping (scaled down): it still serves, but is leaving."""
        fresh = self.reported is not None and now - self.reported_at <= max_age
        return fresh and self.reported is not None and self.reported.draining

    def estimate(self, now: float, max_age: float = REPORT_MAX_AGE) -> int:
        if self.reported is None or now - self.reported_at > max_age:
            return self.local
        moved_on = round(self.reported.score) + self.local - self.local_at_report
        return max(self.local, moved_on)


@dataclass
class Lease:
    """One request in flight to one replica; ``release`` once it has ended (idempotent)."""

    load: ReplicaLoad | None
    released: bool = False

    def release(self) -> None:
        if not self.released and self.load is not None:
            self.load.local -= 1
        self.released = True


@dataclass
class LoadBoard:
    clock: Clock = time.monotonic
    replicas: dict[str, ReplicaLoad] = field(default_factory=dict)

    def start(self, url: str) -> Lease:
        """Count a request to ``url`` from now (before it is sent: a concurrent pick sees it)."""
        load = self.replicas.setdefault(url, ReplicaLoad())
        load.local += 1
        return Lease(load)

    def asking(self, url: str) -> int:
        """This front door's requests in flight to ``url`` as a load report is asked for."""
        return self.replicas.setdefault(url, ReplicaLoad()).local

    def report(self, url: str, load: GatewayLoad | None, local_when_asked: int) -> None:
        """A gateway's answer (None: it gave none, its last report no longer counts)."""
        replica = self.replicas.setdefault(url, ReplicaLoad())
        replica.reported, replica.reported_at = load, self.clock()
        replica.local_at_report = local_when_asked

    def estimates(self, urls: Iterable[str]) -> dict[str, int]:
        now = self.clock()
        return {
            url: self.replicas[url].estimate(now) if url in self.replicas else 0 for url in urls
        }

    def draining(self, urls: Iterable[str]) -> set[str]:
        """Those of ``urls`` whose gateway last reported it is draining."""
        now = self.clock()
        return {url for url in urls if url in self.replicas and self.replicas[url].draining(now)}

    def keep_only(self, urls: set[str]) -> None:
        """Forget replicas that are gone, except those with requests still in flight."""
        for url in [u for u, r in self.replicas.items() if u not in urls and r.local <= 0]:
            del self.replicas[url]

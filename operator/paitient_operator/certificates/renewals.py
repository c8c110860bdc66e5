"""When each serving certificate is due, and the thread that has it renewed then.

The schedule is filled by the reconciles themselves: each records the renewal time of the
certificate it left in place. Every ModelDeployment is reconciled when the operator starts, so
after a restart the schedule knows them all again. Not a kopf timer per object: kopf puts a
finalizer on every object a timer watches, and a ModelDeployment would then stay undeletable
while the operator is down. A renewal that fails stays due and is tried at the next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)


@dataclass
class RenewalSchedule:
    """Renewal time per ModelDeployment (thread-safe)."""

    _due: dict[Key, datetime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, namespace: str, name: str, when: datetime | None) -> None:
        """``when`` its certificate is due; None: nothing to renew (refused, cert-manager's)."""
        with self._lock:
            if when is None:
                self._due.pop((namespace, name), None)
            else:
                self._due[(namespace, name)] = when

    def forget(self, namespace: str, name: str) -> None:
        self.record(namespace, name, None)

    def earliest(self) -> datetime | None:
        """The first renewal time on the schedule (None: nothing scheduled)."""
        with self._lock:
            return min(self._due.values(), default=None)

    def due(self, now: datetime) -> list[Key]:
        with self._lock:
            return sorted(key for key, when in self._due.items() if now >= when)


@dataclass
class RenewalWorker:
    """Every ``interval`` seconds, ``renew`` each deployment the schedule says is due."""

    schedule: RenewalSchedule
    renew: Callable[[str, str], object]
    interval: float
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="certificate-renewals", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def tick(self) -> int:
        """Renew what is due now; how many were tried."""
        due = self.schedule.due(self.clock())
        for namespace, name in due:
            try:
                self.renew(namespace, name)
            except Exception:  # the next tick tries again: it is still due
                log.exception("renewing the serving certificate of %s/%s failed", namespace, name)
        return len(due)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

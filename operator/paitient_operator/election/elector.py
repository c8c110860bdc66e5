"""Campaign for the operator's Lease and keep it, from a thread of its own.

A standby tries every ``retryPeriodSeconds`` (with jitter) and takes the Lease once its holder
let it lapse or released it. The leader renews it as often; a watchdog, not the renewing
thread, enforces ``renewDeadlineSeconds``: a renewal stuck in a slow request cannot keep a
leader acting past the moment a standby may take over. Losing the Lease calls ``on_lost``,
which the operator answers by exiting at once (as client-go's users do): its kopf handlers
stop mid-flight, and the level-based reconcilers of the next leader finish their work.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from paitient_common.kubeapi import Kube, KubeError, resource_path
from paitient_operator.config import LeaderElectionConfig
from paitient_operator.election import lease as leases
from paitient_operator.metrics import set_leading

log = logging.getLogger("paitient.operator.election")


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass
class LeaderElector:
    """Holds or waits for the Lease ``namespace``/``config.lease_name`` as ``identity``."""

    kube: Kube
    namespace: str
    config: LeaderElectionConfig
    identity: str
    on_lost: Callable[[], None]
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = _wall
    leading: threading.Event = field(default_factory=threading.Event)
    holder: str = ""  # who held the Lease when this replica last looked
    _observed: leases.LeaseRecord | None = None
    _observed_at: float = 0.0
    _renewed_at: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.config.lease_name}"

    # -- one attempt ----------------------------------------------------------------------------

    def try_once(self) -> bool:
        """Read the Lease and, where the rules allow, write it with this replica as holder.
        True when this replica holds it now; any failure (the API unreachable, a concurrent
        write refused with 409) is a False, tried again at the next period."""
        name = self.config.lease_name
        try:
            live = self.kube.get(leases.API_VERSION, leases.KIND, name, namespace=self.namespace)
            now = self.clock()
            current = leases.record_of(live) if live is not None else None
            if current != self._observed:
                self._observed, self._observed_at = current, now
            if current is not None:
                self.holder = current.holder
            record = leases.claim(
                current,
                self.identity,
                self.config.lease_duration_seconds,
                self._observed_at,
                now,
                self.wall(),
            )
            if record is None:
                return False
            if live is None:
                self.kube.create(leases.build_lease(self.namespace, name, record))
            else:
                version = str(live["metadata"]["resourceVersion"])
                self._replace(leases.build_lease(self.namespace, name, record, version))
        except KubeError as exc:
            if exc.status != 409:  # 409: another replica wrote first; not worth a line
                log.warning("%s: the API answered %s %s", self.where, exc.status, exc.reason)
            return False
        except Exception as exc:
            log.warning("%s: could not reach the API (%s)", self.where, type(exc).__name__)
            return False
        self._observed, self._observed_at = record, now
        self._renewed_at, self.holder = now, self.identity
        return True

    def _replace(self, lease: dict[str, object]) -> None:
        path = resource_path(
            leases.API_VERSION, leases.KIND, self.namespace, self.config.lease_name
        )
        self.kube.request("PUT", path, body=lease)

    # -- the loops --------------------------------------------------------------------------------

    def start(self) -> None:
        thread = threading.Thread(target=self._campaign, name="leader-election", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _campaign(self) -> None:
        said = None
        while not self._stop.is_set():
            if self.try_once():
                break
            if self.holder != said:
                said = self.holder
                log.info(
                    "standing by: %s holds %s; this replica (%s) takes over when it is released "
                    "or not renewed for %d s",
                    self.holder or "nobody", self.where, self.identity,
                    self.config.lease_duration_seconds,
                )  # fmt: skip
            jitter = 1.0 + 0.2 * random.random()  # standbys do not all knock at once
            self._stop.wait(self.config.retry_period_seconds * jitter)
        if self._stop.is_set():
            return
        log.info("leading: this replica (%s) holds %s and reconciles", self.identity, self.where)
        set_leading(True)
        self.leading.set()
        watchdog = threading.Thread(target=self._watch_deadline, name="lease-deadline", daemon=True)
        self._threads.append(watchdog)
        watchdog.start()
        self._renew()

    def _renew(self) -> None:
        while not self._stop.wait(self.config.retry_period_seconds):
            if self.try_once():
                continue
            if self.holder and self.holder != self.identity:
                self._lose(f"{self.holder} holds it now")
                return

    def _watch_deadline(self) -> None:
        deadline = self.config.renew_deadline_seconds
        while not self._stop.is_set():
            left = self._renewed_at + deadline - self.clock()
            if left <= 0:
                self._lose(f"not renewed for {deadline} s")
                return
            self._stop.wait(left)

    def _lose(self, why: str) -> None:
        if not self.leading.is_set():
            return
        self.leading.clear()
        self._stop.set()  # a replica that lost the Lease never campaigns again: it exits
        set_leading(False)
        log.error("lost %s (%s): stopping so that only the new leader writes", self.where, why)
        self.on_lost()

    def stop(self, *, release: bool) -> None:
        """Stop campaigning and renewing; with ``release``, a leader hands the Lease back so a
        standby takes it at its next try rather than after the lease duration."""
        was_leading = self.leading.is_set()
        self._stop.set()
        self.leading.clear()
        set_leading(False)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=self.config.retry_period_seconds * 3)
        if release and was_leading:
            self._release()

    def _release(self) -> None:
        try:
            live = self.kube.get(
                leases.API_VERSION, leases.KIND, self.config.lease_name, namespace=self.namespace
            )
            if live is None or leases.record_of(live).holder != self.identity:
                return
            record = leases.released(leases.record_of(live), self.wall())
            version = str(live["metadata"]["resourceVersion"])
            self._replace(
                leases.build_lease(self.namespace, self.config.lease_name, record, version)
            )
            log.info("released %s", self.where)
        except Exception as exc:
            log.warning("could not release %s (%s); it lapses in %d s", self.where,
                        type(exc).__name__, self.config.lease_duration_seconds)  # fmt: skip

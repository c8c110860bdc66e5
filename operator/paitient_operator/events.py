"""Kubernetes Events about the operator's objects, posted from a thread of their own.

An Event is a courtesy to whoever runs ``kubectl describe``: a reconcile hands it over and goes
on; one that cannot be posted (its namespace is being deleted, the API is busy) is logged and
dropped, never retried at the reconcile's expense. The queue is bounded, so a flood of Events
cannot hold memory: past its bound the newest are dropped (and counted in the log).
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime
from typing import Final

from paitient_common.kubeapi import Kube, KubeError, Obj

log = logging.getLogger(__name__)
COMPONENT: Final = "paitient-operator"
MAX_PENDING: Final = 10_000
MESSAGE_LIMIT: Final = 1024


def build_event(obj: Obj, type_: str, reason: str, message: str, now: datetime) -> Obj:
    """A core/v1 Event about ``obj`` (pure)."""
    meta = obj["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta.get("uid", ""),
    }
    if meta.get("namespace"):
        involved["namespace"] = meta["namespace"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{meta['name']}.",
            "namespace": meta.get("namespace") or "default",
        },
        "involvedObject": involved,
        "type": type_,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    """``post(obj, type, reason, message)`` returns at once; a thread sends them in order."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._queue: queue.Queue[Obj | None] = queue.Queue(MAX_PENDING)
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="operator-events", daemon=True)
        self._thread.start()

    def post(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        try:
            self._queue.put_nowait(build_event(obj, type_, reason, message, datetime.now(UTC)))
        except queue.Full:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("%d Events dropped: more pending than %d", self._dropped, MAX_PENDING)

    def stop(self, timeout: float = 10) -> None:
        """Send what is pending (within ``timeout``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self.kube.create(event)
            except KubeError as exc:
                log.info(
                    "Event %s about %s/%s not posted: %s", event["reason"],
                    event["metadata"]["namespace"], event["involvedObject"]["name"], exc,
                )  # fmt: skip
            except Exception:
                log.exception("posting an Event failed")

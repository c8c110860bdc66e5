"""Holding requests while a deployment starts from zero replicas.

A request for a deployment that scales from zero and has no ready replica waits here instead of
failing: the first one asks the operator for a replica (a new wake token on the
ModelDeployment), every request for that deployment shares one wait, and each goes on to its
gateway as soon as a replica is Ready. The wait is bounded (``hold_seconds``, long enough for a
GPU model to load); past it the caller gets 503 ``service_error`` with ``Retry-After``, never a
hang. A caller that leaves while held is not forwarded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Gauge

from paitient_common.errors import NotFoundError, ServiceError
from paitient_common.kubeapi import KubeError, Obj
from paitient_common.wake import holdable, ready_replicas, wake_patch, wake_token

log = logging.getLogger("paitient.api")
DEFAULT_HOLD_SECONDS = 300.0
POLL_SECONDS = 0.5
RETRY_AFTER_SECONDS = 10
# A KEDA ScaledObject the operator renders wakes its deployment on this (engine: keda).
HELD = Gauge(
    "paitient_api_held_requests",
    "Requests waiting at this front door for a deployment to start from zero replicas.",
    ["deployment_namespace", "deployment"],
)

# (namespace, name) -> the deployment now, or None when it is gone.
ReadDeployment = Callable[[str, str], Awaitable[Obj | None]]
# (namespace, name, merge patch) -> None.
PatchDeployment = Callable[[str, str, Obj], Awaitable[object]]


@dataclass
class Holds:
    """The waits in progress, one per deployment, shared by every request for it."""

    read: ReadDeployment
    patch: PatchDeployment
    hold_seconds: float = DEFAULT_HOLD_SECONDS
    poll_seconds: float = POLL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _waits: dict[tuple[str, str], asyncio.Task[Obj]] = field(default_factory=dict)
    woken: int = 0  # wake requests written (a figure for tests and metrics)

    @property
    def held(self) -> int:
        return len(self._waits)

    async def until_serving(self, md: Obj) -> Obj:
        """``md`` once it has a ready replica (as read then), holding while it starts from zero;
        ``md`` itself when there is nothing to wait for (the caller's own checks decide)."""
        if not holdable(md):
            return md
        meta = md["metadata"]
        key = (meta["namespace"], meta["name"])
        wait = self._waits.get(key)
        if wait is None:
            wait = asyncio.ensure_future(self._wake_and_wait(key))
            self._waits[key] = wait
            wait.add_done_callback(lambda _: self._waits.pop(key, None))
        held = HELD.labels(*key)
        held.inc()
        try:
            # Shielded: a caller that gives up does not end the wait of the others.
            return await asyncio.wait_for(asyncio.shield(wait), self.hold_seconds)
        except TimeoutError:
            raise ServiceError(
                f"deployment {key[1]} is starting from zero replicas and had no ready replica "
                f"within {self.hold_seconds:.0f} s; try again shortly",
                status=503,
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        finally:
            held.dec()

    async def _wake_and_wait(self, key: tuple[str, str]) -> Obj:
        namespace, name = key
        try:
            await self.patch(namespace, name, wake_patch(wake_token()))
        except KubeError as exc:
            if exc.status == 404:
                raise NotFoundError("deployment not found") from None
            raise ServiceError(
                f"could not ask for a replica of deployment {name}; try again shortly",
                status=503,
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        self.woken += 1
        log.info("deployment %s/%s has no ready replica: asked for one, holding requests",
                 namespace, name)  # fmt: skip
        deadline = self.clock() + self.hold_seconds
        while True:
            try:
                md = await self.read(namespace, name)
            except KubeError:  # the API away a moment: the wait goes on
                await asyncio.sleep(self.poll_seconds)
                continue
            if md is None:
                raise NotFoundError("deployment not found")
            if ready_replicas(md) > 0 or not holdable(md):
                return md
            if self.clock() >= deadline:  # every caller's own bound has passed by now
                return md
            await asyncio.sleep(self.poll_seconds)

"""Which gateways could be admitting for a scope: the N of each limit's ``1 / N`` share while
the store is unreachable, learnt from the store while it answers.

Every gateway beats every second (``heartbeat.lua``) in three kinds of set: all gateways, the
gateways of its ModelDeployment, and, for each namespace whose tenants it serves (its own and
its access list's), that namespace's gateways. A member that stops beating drops out after
three beats; one that stops on SIGTERM leaves at once. N for a tenant is the count of its
namespace's set (every gateway that may admit its requests, across all its deployments); for a
deployment's own limits, its set's. A gateway reports itself ready only once a beat's interval
has passed since its first beat, so every other gateway has counted it by then.

Each beat also reads the store's epoch (made by the first beat that finds none): a new epoch
means the store lost its data, which every gateway then notices within one beat.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Final

from paitient_common.store.connection import Store
from paitient_common.store.keys import PREFIX, members_of_deployment, members_of_namespace

ALL_GATEWAYS: Final = f"{PREFIX}gw:all"
EPOCH: Final = f"{PREFIX}epoch"
BEATS_TO_LIVE: Final = 3


class Membership:
    """This gateway's beats and what they taught it."""

    def __init__(self, pod: str, namespace: str, deployment: str, interval: float = 1.0) -> None:
        self.member = f"{namespace}/{pod}/{uuid.uuid4().hex[:8]}"
        self.namespace, self.deployment = namespace, deployment
        self.interval = interval
        self.counts: dict[str, int] = {}
        self.first_beat: float | None = None
        self.epoch = ""  # the store's epoch at the last beat
        self.epoch_age = 0.0  # seconds, then

    def keys(self, served_namespaces: Iterable[str]) -> list[str]:
        """The sets this gateway belongs to (pure)."""
        namespaces = sorted({self.namespace, *served_namespaces})
        return [
            ALL_GATEWAYS,
            members_of_deployment(self.namespace, self.deployment),
            *(members_of_namespace(ns) for ns in namespaces),
        ]

    async def beat(self, store: Store, served_namespaces: Iterable[str]) -> None:
        keys = self.keys(served_namespaces)
        ttl = round(self.interval * BEATS_TO_LIVE * 1000)
        reply = await store.call(
            "heartbeat", [EPOCH, *keys], [self.member, ttl, "0", uuid.uuid4().hex[:12]]
        )
        self.epoch = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        self.epoch_age = int(reply[1]) / 1000
        self.counts = {k: int(n) for k, n in zip(keys, reply[2:], strict=True)}
        if self.first_beat is None:
            self.first_beat = time.monotonic()

    async def leave(self, store: Store, served_namespaces: Iterable[str]) -> None:
        await store.call(
            "heartbeat", [EPOCH, *self.keys(served_namespaces)], [self.member, 1, "1", "-"]
        )

    @property
    def settle_time(self) -> float:
        """How long a new epoch waits before admission goes through it: every live gateway
        has beaten, so brought its counters and holds into it, by then."""
        return self.interval * BEATS_TO_LIVE

    def settled_in(self) -> bool:
        """Whether every other gateway has counted this one (a beat's interval after its
        first beat)."""
        return self.first_beat is not None and (time.monotonic() - self.first_beat >= self.interval)

    def replicas_for_namespace(self, namespace: str) -> int:
        """N for a tenant of ``namespace``: its set's count, or every gateway when that set was
        never read (a namespace just added to the access list), or 1 before any beat."""
        return max(1, self.counts.get(members_of_namespace(namespace), self._all()))

    def replicas_of_deployment(self) -> int:
        return max(
            1,
            self.counts.get(members_of_deployment(self.namespace, self.deployment), self._all()),
        )

    def _all(self) -> int:
        return self.counts.get(ALL_GATEWAYS, 1)

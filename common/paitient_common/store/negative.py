"""The read-through's negative cache in the shared store, so a name one replica found missing
is not read again by the next replica the same flood reaches; this process's ``NegativeCache``
answers first, and alone without a store or while it is unreachable."""

from __future__ import annotations

import time

from redis import exceptions as rexc

from paitient_common.readthrough import Clock, NegativeCache
from paitient_common.store.connection import UNREACHABLE, Store
from paitient_common.store.health import StoreHealth
from paitient_common.store.keys import negative_key

FAILED = (*UNREACHABLE, rexc.ResponseError)


class SharedNegativeCache:
    """Names of one kind (``key``, ``client``) recently not found, for ``ttl`` seconds."""

    def __init__(
        self,
        kind: str,
        ttl: float,
        store: Store | None = None,
        health: StoreHealth | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.kind, self.ttl = kind, ttl
        self.local = NegativeCache(ttl=ttl, clock=clock)
        self.store, self.health = store, health

    def _shared(self) -> Store | None:
        return self.store if self.health is not None and self.health.available else None

    async def contains(self, name: str) -> bool:
        if name in self.local:
            return True
        store = self._shared()
        if store is None:
            return False
        try:
            found = bool(await store.client.exists(negative_key(self.kind, name)))
        except FAILED as exc:
            assert self.health is not None
            self.health.down(exc)
            return False
        return found

    async def add(self, name: str) -> None:
        self.local.add(name)
        store = self._shared()
        if store is None:
            return
        try:
            await store.client.set(negative_key(self.kind, name), b"1", px=int(self.ttl * 1000))
        except FAILED as exc:
            assert self.health is not None
            self.health.down(exc)

    async def discard(self, name: str) -> None:
        self.local.discard(name)
        store = self._shared()
        if store is None:
            return
        try:
            await store.client.delete(negative_key(self.kind, name))
        except FAILED as exc:
            assert self.health is not None
            self.health.down(exc)

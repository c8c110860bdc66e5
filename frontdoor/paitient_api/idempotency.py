"""``Idempotency-Key``: a retried POST, PATCH or DELETE gets the first attempt's answer.

Both SDKs send one key per call, the same across its retries, so a retry after a lost answer
neither creates a second deployment nor meters a generation twice. Answers are kept in memory
for ``ttl`` seconds per (tenant, key); a duplicate that arrives while the first attempt still
runs waits for it. Streams are not replayed: they are answered once. One front door replica
keeps its own table (a retry that lands on another replica is not recognised; see docs).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_KEY_LENGTH = 128


@dataclass
class Stored:
    status: int
    body: bytes
    content_type: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expires: float = 0.0


@dataclass
class IdempotencyTable:
    ttl: float = 600.0
    capacity: int = 10_000
    _entries: OrderedDict[tuple[str, str], Stored] = field(default_factory=OrderedDict)

    def claim(self, tenant: str, key: str) -> tuple[Stored, bool]:
        """The entry for (tenant, key) and whether this caller owns it (is the first)."""
        now = time.monotonic()
        self._expire(now)
        found = self._entries.get((tenant, key))
        if found is not None:
            return found, False
        entry = Stored(0, b"", "", expires=now + self.ttl)
        self._entries[(tenant, key)] = entry
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry, True

    def complete(self, entry: Stored, status: int, body: bytes, content_type: str) -> None:
        entry.status, entry.body, entry.content_type = status, body, content_type
        entry.done.set()

    def abandon(self, tenant: str, key: str, entry: Stored) -> None:
        """The first attempt failed without an answer worth replaying (5xx, stream, crash)."""
        if self._entries.get((tenant, key)) is entry:
            del self._entries[(tenant, key)]
        entry.status = -1
        entry.done.set()

    def _expire(self, now: float) -> None:
        while self._entries:
            first = next(iter(self._entries.values()))
            if first.expires > now:
                break
            self._entries.popitem(last=False)

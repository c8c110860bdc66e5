"""``Idempotency-Key``: a retried POST, PATCH or DELETE gets the first attempt's answer.

Both SDKs send one key per call, the same across its retries, so a retry after a lost answer
neither creates a second deployment nor meters a generation twice. Answers are kept for
``ttl`` seconds per (tenant, method, path, key); a duplicate that arrives while the first
attempt still runs waits for it. Streams are not replayed: they are answered once.

Two places hold the records (``IdempotencyRecords``):

- ``SharedRecords``: the shared store, for the deployment routes, so a retry that lands on any
  front-door replica gets the same answer. Generations are not kept there: their answers carry
  completion text, which never rests in the store (a retried generate that lands on another
  replica is generated again).
- ``LocalRecords``: this process's table: the generate and OpenAI routes, every route without a
  store, and every route while the store is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from paitient_common.store.connection import UNREACHABLE, Store
from paitient_common.store.health import StoreHealth
from paitient_common.store.keys import idempotency_key

MAX_KEY_LENGTH = 128
PENDING = b"P:"
DONE = b"D:"


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


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str


@dataclass
class Claim:
    """What ``begin`` decided: run and record (``owner``), replay ``answer``, or just run (the
    first attempt left nothing to replay)."""

    tenant: str
    slot: str
    owner: bool
    answer: Answer | None = None
    entry: Stored | None = None  # local
    token: bytes = b""  # shared: this attempt's claim on the record
    records: IdempotencyRecords | None = None


class IdempotencyRecords(Protocol):
    async def begin(self, tenant: str, slot: str) -> Claim: ...

    async def complete(self, claim: Claim, answer: Answer) -> None: ...

    async def abandon(self, claim: Claim) -> None: ...


class LocalRecords:
    """The records of this process (``IdempotencyTable``)."""

    def __init__(self, table: IdempotencyTable | None = None) -> None:
        self.table = table or IdempotencyTable()

    async def begin(self, tenant: str, slot: str) -> Claim:
        entry, first = self.table.claim(tenant, slot)
        if first:
            return Claim(tenant, slot, True, entry=entry, records=self)
        await entry.done.wait()
        if entry.status > 0:
            return Claim(tenant, slot, False, Answer(entry.status, entry.body, entry.content_type))
        return Claim(tenant, slot, False)

    async def complete(self, claim: Claim, answer: Answer) -> None:
        assert claim.entry is not None
        self.table.complete(claim.entry, answer.status, answer.body, answer.content_type)

    async def abandon(self, claim: Claim) -> None:
        assert claim.entry is not None
        self.table.abandon(claim.tenant, claim.slot, claim.entry)


class SharedRecords:
    """Records in the shared store: ``P:<token>`` while the first attempt runs (for at most
    ``lease`` seconds: a replica that dies mid-request frees it), then ``D:<answer>`` for
    ``ttl`` seconds. A duplicate polls until the answer is there or the claim is gone."""

    def __init__(
        self,
        store: Store,
        health: StoreHealth,
        fallback: LocalRecords,
        ttl: float = 600.0,
        lease: float = 60.0,
        poll: float = 0.05,
    ) -> None:
        self.store, self.health, self.fallback = store, health, fallback
        self.ttl, self.lease, self.poll = ttl, lease, poll

    async def begin(self, tenant: str, slot: str) -> Claim:
        if not self.health.available:
            return await self.fallback.begin(tenant, slot)
        key = idempotency_key(tenant, slot)
        token = PENDING + secrets.token_hex(8).encode()
        client = self.store.client
        try:
            deadline = time.monotonic() + self.lease
            while True:
                if await client.set(key, token, nx=True, px=int(self.lease * 1000)):
                    return Claim(tenant, slot, True, token=token, records=self)
                value = await client.get(key)
                if isinstance(value, str):  # the client is made with bytes replies
                    value = value.encode()
                if value is not None and value.startswith(DONE):
                    return Claim(tenant, slot, False, decode_answer(value))
                if time.monotonic() > deadline:  # the first attempt outlived its lease
                    return Claim(tenant, slot, False)
                if value is not None:
                    await asyncio.sleep(self.poll)
        except UNREACHABLE as exc:
            self.health.down(exc)
            return await self.fallback.begin(tenant, slot)

    async def complete(self, claim: Claim, answer: Answer) -> None:
        try:
            await self.store.client.set(
                idempotency_key(claim.tenant, claim.slot),
                encode_answer(answer),
                px=int(self.ttl * 1000),
            )
        except UNREACHABLE as exc:
            self.health.down(exc)  # the answer is not kept: a retry runs again

    async def abandon(self, claim: Claim) -> None:
        try:
            await self.store.call(
                "release_if_owner", [idempotency_key(claim.tenant, claim.slot)], [claim.token]
            )
        except UNREACHABLE as exc:
            self.health.down(exc)  # the claim lapses with its lease


def encode_answer(answer: Answer) -> bytes:
    head = json.dumps({"status": answer.status, "contentType": answer.content_type})
    return DONE + head.encode() + b"\n" + answer.body


def decode_answer(value: bytes) -> Answer:
    head, _, body = value[len(DONE) :].partition(b"\n")
    meta = json.loads(head)
    return Answer(int(meta["status"]), body, str(meta["contentType"]))

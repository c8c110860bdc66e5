"""Load on a gateway that may die under it: clients sending completions (JSON and streams, each
request with its own ``x-request-id``) until told to stop, recording what they started and the
usage of every answer they received complete. Shared by the SIGKILL test and its benchmark."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp


@dataclass
class Load:
    url: str
    headers: dict[str, str]
    clients: int = 8
    started: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    received: dict[str, int] = field(default_factory=dict)  # request id -> tokens it showed
    received_at: dict[str, float] = field(default_factory=dict)  # request id -> time.time()
    failures: Counter[int] = field(default_factory=Counter)  # client -> connection failures
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def in_flight(self) -> int:
        return len(self.started - self.finished)

    async def until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition`` holds (the caller bounds the wait)."""
        while not condition():
            await asyncio.sleep(0.01)

    async def run(self, driver: Awaitable[Any]) -> Any:
        """Run the clients while ``driver`` runs; stop them when it returns its result."""
        tasks = [asyncio.ensure_future(self._client(n)) for n in range(self.clients)]
        try:
            return await driver
        finally:
            self._stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, n: int) -> None:
        i = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while not self._stop.is_set():
                i += 1
                rid = f"c{n}-{i}"
                stream = i % 2 == 0
                body: dict[str, Any] = {"prompt": f"w{n} w{i} x", "max_tokens": 1 + i % 7}
                if stream:
                    body |= {"stream": True, "stream_options": {"include_usage": True}}
                self.started.add(rid)
                try:
                    await self._one(session, rid, body, stream)
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    self.failures[n] += 1
                    await asyncio.sleep(0.05)  # the gateway is down: try again shortly
                finally:
                    self.finished.add(rid)

    async def _one(
        self, session: aiohttp.ClientSession, rid: str, body: dict[str, Any], stream: bool
    ) -> None:
        headers = {**self.headers, "x-request-id": rid}
        async with session.post(self.url, json=body, headers=headers) as response:
            raw = await response.read()
            if response.status != 200:
                return
            if stream:
                events = [e[6:] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
                if not events or events[-1] != b"[DONE]":
                    return  # cut off: the client never saw its usage
                usage = json.loads(events[-2])["usage"]
            else:
                usage = json.loads(raw)["usage"]
            self.received[rid] = usage["prompt_tokens"] + usage["completion_tokens"]
            self.received_at[rid] = time.time()


def ledger_records(directory: Path) -> list[dict[str, Any]]:
    lines = b"".join(p.read_bytes() for p in sorted(directory.glob("usage-*.jsonl")))
    return [json.loads(line) for line in lines.splitlines() if line.strip()]

"""A burst against a limit: concurrent clients spread over several entry points (gateways or
front doors), each sending completions (JSON and streams) as fast as the answers come back,
recording what was admitted, what the admitted answers showed as usage, and why the rest was
refused. Shared by the store tests, the cluster test and ``benchmarks/bench_limits.py``."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

Body = Callable[[int, int], dict[str, Any]]  # (client, attempt) -> request body


def completion_body(client: int, attempt: int) -> dict[str, Any]:
    """A small completion; every other one streamed with its usage asked for."""
    body: dict[str, Any] = {"prompt": "a", "max_tokens": 9}
    if (client + attempt) % 2:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


@dataclass
class LimitLoad:
    urls: list[str]  # full URLs of the completions route, one per entry point
    headers: dict[str, str]
    clients: int = 16
    body: Body = completion_body
    pause_after_refusal: float = 0.0
    admitted: int = 0
    tokens: int = 0  # usage shown by admitted answers that arrived whole
    statuses: Counter[int] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)  # 429 message -> count
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (time, tokens) admitted
    errors: Counter[str] = field(default_factory=Counter)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stop.set()

    async def run_for(self, seconds: float | None = None, attempts: int | None = None) -> None:
        """Run every client until ``seconds`` passed, or each made ``attempts`` requests."""
        connector = aiohttp.TCPConnector(limit=0, ssl=False)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks = [
                asyncio.ensure_future(self._client(session, n, attempts))
                for n in range(self.clients)
            ]
            if seconds is not None:
                await asyncio.sleep(seconds)
                self.stop()
            await asyncio.gather(*tasks)

    async def _client(self, session: aiohttp.ClientSession, n: int, attempts: int | None) -> None:
        i = 0
        while not self._stop.is_set() and (attempts is None or i < attempts):
            i += 1
            url = self.urls[(n + i) % len(self.urls)]
            try:
                refused = await self._one(session, url, self.body(n, i))
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.errors[type(exc).__name__] += 1
                refused = True
            if refused and self.pause_after_refusal:
                await asyncio.sleep(self.pause_after_refusal)

    async def _one(self, session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> bool:
        async with session.post(url, json=body, headers=self.headers) as response:
            raw = await response.read()
            self.statuses[response.status] += 1
            if response.status == 429:
                self.refusals[json.loads(raw)["error"]["message"]] += 1
                return True
            if response.status != 200:
                return True
            self.admitted += 1
            tokens = usage_of(raw, bool(body.get("stream")))
            if tokens is not None:
                self.tokens += tokens
                self.timeline.append((time.monotonic(), tokens))
            return False


def usage_of(raw: bytes, stream: bool) -> int | None:
    """Total tokens an answer showed; None for a stream cut off before its usage."""
    if not stream:
        usage = json.loads(raw)["usage"]
    else:
        events = [e[6:] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
        if len(events) < 2 or events[-1] != b"[DONE]":
            return None
        usage = json.loads(events[-2]).get("usage")
        if usage is None:
            return None
    return int(usage["prompt_tokens"]) + int(usage["completion_tokens"])

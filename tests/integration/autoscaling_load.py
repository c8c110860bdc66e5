"""Load for the autoscaling tests and benchmark: clients sending completions (streams and JSON
alternately) through the front door's OpenAI route until stopped, recording every answer they
received whole (its usage), every failure, and each request's latency."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.frontdoor_process import client_trust


@dataclass
class Answer:
    started: float  # monotonic
    seconds: float
    tokens: int  # prompt + completion, as the usage the client received says
    ttft: float | None  # streams: seconds to the first token's event


@dataclass
class FrontDoorLoad:
    """``clients`` callers of ``model`` (a deployment id) at ``root`` (the front door), each
    sending one request after another; ``max_tokens`` per request."""

    root: str
    headers: dict[str, str]
    model: str
    clients: int
    max_tokens: int = 30
    # The front door's CA: the session's HTTPS front door is trusted as the SDKs trust it (the
    # bundle the environment names); an HTTPS front door elsewhere passes its own.
    ssl: Any = field(default_factory=client_trust)
    timeout: float = 600.0
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def received_tokens(self) -> int:
        return sum(a.tokens for a in self.answers)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Until ``stop()``; each client finishes the request it is in."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(self._client(session, n) for n in range(self.clients)))

    async def once(self, count: int) -> None:
        """``count`` requests at once (half streams), then return."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(self._one(session, n % 2 == 0, n) for n in range(count)))

    async def _client(self, session: aiohttp.ClientSession, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            await self._one(session, (n + i) % 2 == 0, n)

    async def _one(self, session: aiohttp.ClientSession, stream: bool, n: int) -> None:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": f"client {n} says hello",
            "max_tokens": self.max_tokens,
        }
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        started = time.monotonic()
        ttft = None
        try:
            async with session.post(
                f"{self.root}/v1/completions", json=body, headers=self.headers, ssl=self.ssl
            ) as response:
                if response.status != 200:
                    self.failures.append(f"{response.status} {await response.text()}"[:300])
                    return
                if not stream:
                    usage = (await response.json())["usage"]
                else:
                    usage = None
                    async for raw in response.content:
                        line = raw.decode().strip()
                        if not line.startswith("data:") or line == "data: [DONE]":
                            continue
                        event = json.loads(line[5:])
                        if ttft is None and event.get("choices"):
                            ttft = time.monotonic() - started
                        usage = event.get("usage") or usage
                    if usage is None:
                        self.failures.append("a stream ended without its usage")
                        return
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}"[:300])
            return
        tokens = int(usage["prompt_tokens"]) + int(usage["completion_tokens"])
        self.answers.append(Answer(started, time.monotonic() - started, tokens, ttft))


def pace_standin(routes: Path, namespace: str, name: str, tokens_per_second: float) -> None:
    """Slow the deployment's stand-in so each answer takes a while (load that lasts)."""
    entry = json.loads(routes.read_text())[f"{namespace}/{name}"]
    request = urllib.request.Request(
        f"{entry['standin']}/standin/config",
        data=json.dumps({"tokens_per_second": tokens_per_second}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=5):
        pass

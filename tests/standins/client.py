"""A small HTTP client for the gateway tests (aiohttp, one session per call or per test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from multidict import CIMultiDict

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[Any]:
        """The SSE data payloads (parsed JSON, or the raw ``[DONE]``)."""
        out: list[Any] = []
        for event in self.body.split(b"\n\n"):
            if event.startswith(b"data: "):
                data = event[6:]
                out.append("[DONE]" if data == b"[DONE]" else json.loads(data))
        return out


async def call(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 30,
) -> Answer:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        async with s.request(method, url, data=data, headers=hdrs) as r:
            return Answer(r.status, CIMultiDict(r.headers), await r.read())


def sync_call(method: str, url: str, body: Any = None, **kw: Any) -> Answer:
    return run(call(method, url, body, **kw))

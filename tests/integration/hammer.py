"""Clients that keep sending requests, recording when each began and ended, so a test can tell
which requests were admitted after a change took effect.

Every time is ``time.monotonic()`` of this process, the same clock the test reads when its change
(a revoke, a suspension) returns. A request's ``started`` is taken before it is sent, so a request
recorded as starting after a moment was sent after it: checking admissions against ``started``
can only err towards leniency when the client lags, never blame the server for it.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.integration.frontdoor_process import client_trust


@dataclass(frozen=True)
class Target:
    """One kind of request: ``name`` labels the shots."""

    name: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any = None
    # A gateway: trust only this context and verify this name (the front door's way to it).
    context: ssl.SSLContext | None = None
    server_name: str | None = None


@dataclass(frozen=True)
class Shot:
    target: str
    started: float
    ended: float
    status: int  # 0 when the connection failed
    headers: dict[str, str] = field(default_factory=dict)


class Hammer:
    """``clients`` concurrent loops, client ``i`` sending to ``targets[i % len(targets)]``, on an
    event loop in a thread of their own, from ``start()`` until ``stop()``."""

    def __init__(self, targets: list[Target], clients: int) -> None:
        self.targets, self.clients = targets, clients
        self.shots: list[Shot] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Hammer:
        self._thread.start()
        return self

    def stop(self) -> list[Shot]:
        self._stop.set()
        self._thread.join(timeout=60)
        return self.snapshot()

    def snapshot(self) -> list[Shot]:
        with self._lock:
            return list(self.shots)

    def wait(self, check: Callable[[list[Shot]], bool], timeout: float, what: str) -> None:
        """Until ``check(shots)`` holds (polling), or fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not check(self.snapshot()):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=self.clients)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(
                *(
                    self._client(session, self.targets[i % len(self.targets)])
                    for i in range(self.clients)
                )
            )

    async def _client(self, session: aiohttp.ClientSession, target: Target) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                async with session.request(
                    target.method,
                    target.url,
                    json=target.body,
                    headers=target.headers,
                    ssl=target.context or client_trust() or True,
                    server_hostname=target.server_name,
                ) as response:
                    await response.read()
                    status, headers = response.status, dict(response.headers)
            except (aiohttp.ClientError, TimeoutError):
                status, headers = 0, {}
            shot = Shot(target.name, started, time.monotonic(), status, headers)
            with self._lock:
                self.shots.append(shot)


def admitted_after(
    shots: list[Shot], moment: float, admitted: Callable[[Shot], bool]
) -> list[Shot]:
    """The shots ``admitted`` that began after ``moment``."""
    return [s for s in shots if s.started > moment and admitted(s)]


def last_admission(shots: list[Shot], admitted: Callable[[Shot], bool]) -> float | None:
    """When the last admitted shot began."""
    return max((s.started for s in shots if admitted(s)), default=None)

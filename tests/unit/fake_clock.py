"""An asyncio event loop on a fake clock, for unit tests of our own timing logic.

Its ``time()`` is a number the loop moves itself: whenever nothing is ready to run, the clock
jumps to the next timer (``asyncio.sleep``, ``wait_for`` timeouts) instead of waiting for it.
A test then runs seconds of timers in microseconds and reads exact times, with nothing left to
chance. Real I/O still works (it is polled first); with no timer left, the loop waits for I/O as
usual. Only public asyncio API: a loop built on a selector of our own, ``time()`` overridden.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Answers at once: pending I/O if there is some, else the clock moved to the timeout."""

    def __init__(self, loop: FakeClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only I/O can move things on
            return super().select(None)
        self._loop.now += timeout
        return []


class FakeClockLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_on_fake_clock(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh fake-clock loop (closed afterwards)."""
    loop = FakeClockLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()

"""The queue of objects to reconcile: each key at most once in it, never two workers on one key.

Many events about one ModelDeployment (its children created, its pod scheduled, Running, Ready)
arrive faster than a reconcile runs under a burst; reconciling once for all of them is as good,
as reconciles read the current state. So a key added while it waits is not added again, and a
key added while a worker reconciles it is queued again once that worker is done (the change may
have come after the read). The rules of client-go's workqueue, without its rate limiting: a
failed reconcile is retried later through ``add_after``.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down: the worker asking for a key stops."""


class WorkQueue(Generic[K]):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._order: deque[K] = deque()
        self._queued: set[K] = set()  # in _order
        self._busy: set[K] = set()  # handed to a worker, not yet done
        self._again: set[K] = set()  # added while busy: back in the queue when done
        self._later: list[tuple[float, int, K]] = []  # (due, tie-break, key)
        self._count = 0
        self._closed = False
        self._cond = threading.Condition()

    def add(self, key: K) -> None:
        with self._cond:
            if self._closed:
                return
            if key in self._busy:
                self._again.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._order.append(key)
                self._cond.notify()

    def add_after(self, key: K, seconds: float) -> None:
        """``add`` in ``seconds`` (a retry after a failure)."""
        with self._cond:
            self._count += 1
            heapq.heappush(self._later, (self._clock() + seconds, self._count, key))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> K | None:
        """The next key (the worker owns it until ``done``); None after ``timeout``; raises
        ``ShutDown`` once the queue is shut down."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise ShutDown()
                self._release_due()
                if self._order:
                    key = self._order.popleft()
                    self._queued.discard(key)
                    self._busy.add(key)
                    return key
                wait = self._next_due_in()
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        with self._cond:
            self._busy.discard(key)
            if key in self._again:
                self._again.discard(key)
                if key not in self._queued:
                    self._queued.add(key)
                    self._order.append(key)
                    self._cond.notify()

    def shut_down(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._order)

    def idle(self) -> bool:
        """Nothing queued, nothing being reconciled, nothing due later."""
        with self._cond:
            return not (self._order or self._busy or self._later)

    def _release_due(self) -> None:
        now = self._clock()
        while self._later and self._later[0][0] <= now:
            _, _, key = heapq.heappop(self._later)
            if key in self._busy:
                self._again.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._order.append(key)

    def _next_due_in(self) -> float | None:
        if not self._later:
            return None
        return max(0.0, self._later[0][0] - self._clock())

"""Reading through a cache to the API without letting callers turn into a flood of reads.

``FreshReader.read(target, fetch)`` guarantees a caller an answer from a read that *began after
it asked* (so an object written before the call is seen), while any number of callers asking
for the same target share reads: at most one read per target is in flight, reads of one target
begin at least ``min_interval`` apart, and at most ``max_in_flight`` reads run at once. Under a
flood the number of API reads per target is therefore at most ``1 / min_interval`` per second,
whatever the request rate, and a caller waits at most ``min_interval`` plus one read.

``NegativeCache`` remembers, for ``ttl`` seconds, names a read did not find, so the same unknown
name asked again costs nothing at all.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass
class _Read:
    task: asyncio.Task[None] | None = None
    started: float | None = None  # when the fetch itself began; None while it waits its turn


class FreshReader:
    """Shared, spaced, bounded reads per target; see the module docstring."""

    def __init__(
        self,
        min_interval: float = 0.25,
        max_in_flight: int = 4,
        clock: Clock = time.monotonic,
    ) -> None:
        self.min_interval = min_interval
        self.clock = clock
        self._slots = asyncio.Semaphore(max_in_flight)
        self._last: dict[str, _Read] = {}

    async def read(self, target: str, fetch: Callable[[], Awaitable[None]]) -> None:
        """Return once a read of ``target`` that began after this call has finished; a failed
        read raises its error to every caller that shared it."""
        asked = self.clock()
        while True:
            last = self._last.get(target)
            if last is not None and last.task is not None:
                fresh = last.started is None or last.started >= asked  # None: not begun yet
                if fresh and not (last.task.done() and last.started is None):
                    await asyncio.shield(last.task)  # a read late enough: share it
                    return
                if not last.task.done():
                    # Too early for us: wait for it to end (whatever it found), then look again.
                    await asyncio.wait([last.task])
                    continue
            began = last.started if last is not None and last.started is not None else None
            wait = 0.0 if began is None else began + self.min_interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # someone else may have started the read meanwhile
            self._prune()
            read = _Read()
            read.task = asyncio.ensure_future(self._run(read, fetch))
            read.task.add_done_callback(_retrieve)  # every caller may have gone: no warning
            self._last[target] = read

    async def _run(self, read: _Read, fetch: Callable[[], Awaitable[None]]) -> None:
        async with self._slots:
            read.started = self.clock()
            await fetch()

    def _prune(self, keep: int = 1024) -> None:
        """Forget finished reads older than the interval once many targets were seen."""
        if len(self._last) < keep:
            return
        horizon = self.clock() - self.min_interval
        for target, read in list(self._last.items()):
            if read.task is not None and read.task.done() and (read.started or 0.0) < horizon:
                del self._last[target]


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class NegativeCache:
    """Names recently not found, each forgotten after ``ttl`` seconds; at most ``size`` kept."""

    def __init__(self, ttl: float = 5.0, size: int = 10_000, clock: Clock = time.monotonic) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()

    def add(self, name: str) -> None:
        self._until[name] = self.clock() + self.ttl
        self._until.move_to_end(name)
        while len(self._until) > self.size:
            self._until.popitem(last=False)

    def __contains__(self, name: object) -> bool:
        until = self._until.get(name) if isinstance(name, str) else None
        if until is None:
            return False
        if until <= self.clock():
            del self._until[name]  # type: ignore[arg-type]
            return False
        return True

    def discard(self, name: str) -> None:
        self._until.pop(name, None)

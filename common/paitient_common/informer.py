"""A watch-fed cache of one collection (the informer pattern), shared by the front door and the
gateways for keys, tenants, the pepper, the tiers and a deployment's access list.

``Informer.run`` lists the collection, then watches from the list's resourceVersion; a watch
the server ends (``timeoutSeconds``) is resumed from the last resourceVersion seen, without a
new list. It lists again after ``410 Gone`` (the version fell out of the server's window), after
any error (with a bounded, jittered backoff; a line longer than any event is one) and after a watch that stayed silent past its read
timeout (a stalled connection): each of those restarts is counted by reason. ``age()`` is how
long ago the cache was last known current; callers fail readiness past a bound.

Objects are kept by ``namespace/name`` with ``parse(obj)`` computed once per version, so a
change costs one parse however large the collection. ``merge`` lets a read-through add an object
fetched by GET: the newer resourceVersion wins (resourceVersions are etcd revisions, integers that
grow with every write, which Kubernetes 1.35 guarantees as comparable — KEP-5504), so a
read-through can never roll the cache back, nor can a late watch event.

Why our own: the official client's ``SharedInformer`` (kubernetes 37) runs a thread per
informer, reconnects in a tight loop when the API server is down (no backoff), sets no client
read timeout (a stalled watch waits forever), asks for no bookmarks and mis-reads custom-resource
lists (dicts); ``kubernetes.aio.watch.Watch`` is a stream decoder only (no list, one 410 retry).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiohttp

from paitient_common.kubeapi import KubeError, Obj
from paitient_common.kubeasync import AsyncKube, EventTooLarge, Query, WatchEvent

log = logging.getLogger("paitient.informer")

T = TypeVar("T")
Clock = Callable[[], float]


@dataclass(frozen=True)
class WatchSettings:
    """How long a watch runs and how long silence is tolerated.

    The server ends each watch after a random ``timeout_min`` to ``timeout_max`` seconds (random, so
    replicas do not reconnect in step); the client gives up on a watch silent for
    ``timeoutSeconds + read_grace``: so a stalled watch is restarted within
    ``timeout_max + read_grace`` seconds. A healthy cache is therefore never older than about
    ``timeout_max``; ``stale_after`` is the age past which it is reported stale (readiness fails).
    """

    timeout_min: int = 15
    timeout_max: int = 25
    read_grace: float = 5.0
    backoff_base: float = 0.2
    backoff_cap: float = 10.0
    stale_after: float = 45.0

    def watch_timeout(self, rng: random.Random) -> int:
        return rng.randint(self.timeout_min, self.timeout_max)

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^failures)]."""
        return rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** min(failures, 16)))


def compare_versions(a: str, b: str) -> int | None:
    """-1, 0 or 1 as resourceVersion ``a`` is older than, equal to or newer than ``b``; None
    when either is not the positive integer the API server hands out (pure)."""
    if not (a.isdigit() and b.isdigit()) or a.startswith("0") or b.startswith("0"):
        return None
    x, y = int(a), int(b)
    return (x > y) - (x < y)


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    return f"{namespace}/{name}" if namespace else str(name)


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(frozen=True)
class Entry(Generic[T]):
    version: str
    value: T


class Stalled(Exception):
    """The watch stayed silent past its read timeout."""


class ShortWatch(Exception):
    """The server ended a watch at once with nothing in it: treated as a failure, so a server or
    proxy that keeps doing so is met with backoff, not a tight reconnect loop."""


SHORT_WATCH = 1.0  # seconds: a watch the server ends sooner, empty, is a ShortWatch


class Informer(Generic[T]):
    """A cache of one ``Query``'s objects kept current by list + watch; see the module doc."""

    def __init__(
        self,
        name: str,
        kube: AsyncKube,
        query: Query,
        parse: Callable[[Obj], T],
        on_change: Callable[[], None],
        settings: WatchSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.kube = kube
        self.query = query
        self.parse = parse
        self.on_change = on_change
        self.settings = settings or WatchSettings()
        self.clock = clock
        self.rng = rng or random.Random()
        self.entries: dict[str, Entry[T]] = {}
        self.resource_version: str | None = None
        self.restarts: Counter[str] = Counter()
        self._contact: float | None = None
        self._synced = asyncio.Event()

    # -- what readers see --------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once the first list is in."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def values(self) -> list[T]:
        return [e.value for e in self.entries.values()]

    def get(self, key: str) -> T | None:
        entry = self.entries.get(key)
        return entry.value if entry is not None else None

    def age(self) -> float | None:
        """Seconds since the cache was last known current (a list, an event, a bookmark or a
        watch the server ended in order); None before the first list."""
        return None if self._contact is None else self.clock() - self._contact

    def stale(self) -> bool:
        age = self.age()
        return age is None or age > self.settings.stale_after

    # -- changes -----------------------------------------------------------------------------

    def merge(self, *objs: Obj) -> bool:
        """Add or update each object unless the cache holds the same or a newer version of it
        (what a read-through fetched). True when the cache changed; readers are told once."""
        changed = [self._put(obj, authoritative=False) for obj in objs]
        if any(changed):
            self._notify()
            return True
        return False

    def _put(self, obj: Obj, authoritative: bool) -> bool:
        key, version = object_key(obj), _version(obj)
        held = self.entries.get(key)
        if held is not None:
            order = compare_versions(version, held.version)
            # A version the server did not number as an integer cannot be ordered: the watch
            # (authoritative) wins, a read-through does not.
            if (order is None and not authoritative) or (order is not None and order <= 0):
                return False
        self.entries[key] = Entry(version, self.parse(obj))
        return True

    def _remove(self, obj: Obj) -> bool:
        key = object_key(obj)
        held = self.entries.get(key)
        if held is None:
            return False
        if compare_versions(_version(obj), held.version) == -1:
            return False  # a read-through already holds a newer life of this name
        del self.entries[key]
        return True

    def _replace(self, items: Iterable[Obj], list_version: str) -> None:
        """The list's objects; an object merged by a read-through after the list was taken (newer
        than it) stays."""
        previous, self.entries = self.entries, {}
        for obj in items:
            key = object_key(obj)
            held = previous.get(key)
            if held is not None and held.version == _version(obj) and held.version:
                self.entries[key] = held  # unchanged since it was parsed: no second parse
            else:
                self._put(obj, authoritative=True)
        for key, held in previous.items():
            if key in self.entries:
                newer = compare_versions(held.version, self.entries[key].version) == 1
            else:
                newer = compare_versions(held.version, list_version) == 1
            if newer:
                self.entries[key] = held

    def _apply(self, event: WatchEvent) -> bool:
        if event.type in ("ADDED", "MODIFIED"):
            return self._put(event.object, authoritative=True)
        if event.type == "DELETED":
            return self._remove(event.object)
        return False  # BOOKMARK: only the resourceVersion moves on

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled; never raises otherwise."""
        failures = 0
        while True:
            try:
                if self.resource_version is None:
                    await self._list()
                await self._watch()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: keep the cache, list again after a pause
                reason = _reason(exc)
                self.restarts[reason] += 1
                self.resource_version = None
                # A version that aged out is routine: list again at once (once; a server that
                # keeps answering 410 gets the backoff like any other failure).
                delay = 0.0 if reason == "gone" and failures == 0 else self._backoff(failures)
                failures += 1
                log.log(
                    logging.INFO if reason == "gone" else logging.WARNING,
                    "watch of %s ended: %s (%s); listing again in %.1f s",
                    self.describe(), reason, type(exc).__name__, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)

    def describe(self) -> str:
        return f"{self.name} ({self.query.describe()})"

    def _backoff(self, failures: int) -> float:
        return self.settings.backoff(failures, self.rng)

    def _notify(self) -> None:
        try:
            self.on_change()
        except Exception:  # a reader's failure must not stop the watch that feeds everyone
            log.exception("a reader of %s failed on a change", self.describe())

    async def _list(self) -> None:
        items, version = await self.kube.list(self.query)
        self._replace(items, version)
        self.resource_version = version
        self._contact = self.clock()
        self._synced.set()
        self._notify()

    async def _watch(self) -> None:
        assert self.resource_version is not None
        timeout = self.settings.watch_timeout(self.rng)
        stream = self.kube.watch(
            self.query, self.resource_version, timeout, timeout + self.settings.read_grace
        )
        started, events = self.clock(), 0
        try:
            async for event in stream:
                events += 1
                self._contact = self.clock()
                version = _version(event.object)
                if version:
                    self.resource_version = version
                if self._apply(event):
                    self._notify()
        except TimeoutError as exc:  # the client's read timeout: no byte for too long
            raise Stalled() from exc
        finally:
            await stream.aclose()
        if events == 0 and self.clock() - started < SHORT_WATCH:
            raise ShortWatch()
        self._contact = self.clock()  # the server ended the watch in order: nothing was missed


def _reason(exc: BaseException) -> str:
    """The metric label of a restart."""
    if isinstance(exc, KubeError):
        return "gone" if exc.status == 410 else "error"
    if isinstance(exc, Stalled):
        return "stalled"
    if isinstance(exc, ShortWatch):
        return "short"
    if isinstance(exc, EventTooLarge):
        return "oversize"
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return "disconnected"
    return "error"

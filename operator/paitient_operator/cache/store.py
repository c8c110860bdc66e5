"""The operator's watch-fed caches: one informer per collection on an event loop of their own,
read by the reconcilers' threads, fed the operator's own writes.

Each collection (``watched.py``) is listed, then watched (``paitient_common.informer``: resumed
without a new list, listed again after 410 or an error, restarted when silent), keeping what its
projection keeps. Reads are dictionary look-ups, never requests. After each write the reconciler
hands the API's answer to ``written``: it enters the cache unless the cache already holds the
same or a newer version (resourceVersions are ordered), so the next reconcile sees its own write
even while the watch lags behind a burst, and a late watch event never rolls it back.

Readers live on other threads: every change of the informers' dictionaries happens on the loop
thread (writes through are handed to it and waited for), and the indexes readers iterate are
copied under a lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from paitient_common.informer import Informer, WatchSettings
from paitient_common.kubeapi import Obj, load_configuration
from paitient_common.kubeasync import AsyncKube
from paitient_operator.cache.watched import Watched

log = logging.getLogger(__name__)
ObjectListener = Callable[[Watched, str, Obj], None]
ListListener = Callable[[Watched], None]


class CacheNotSynced(RuntimeError):
    """A collection's first list did not come in time."""


class ClusterCache:
    def __init__(
        self,
        collections: Sequence[Watched],
        kubeconfig: str | None = None,
        on_object: ObjectListener | None = None,
        on_list: ListListener | None = None,
        settings: WatchSettings | None = None,
    ) -> None:
        self.collections = tuple(collections)
        self._kubeconfig = kubeconfig
        self._on_object = on_object
        self._on_list = on_list
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._kube = AsyncKube(None)  # its configuration is loaded at start
        self._tasks: list[asyncio.Task[None]] = []
        self.informers: dict[Watched, Informer[Obj]] = {
            watched: self._informer(watched, settings) for watched in self.collections
        }
        self._index: dict[Watched, defaultdict[str, set[str]]] = {
            w: defaultdict(set) for w in self.collections if w.index is not None
        }
        self._keys: dict[Watched, dict[str, str]] = {w: {} for w in self._index}
        self._lock = threading.Lock()

    def _informer(self, watched: Watched, settings: WatchSettings | None) -> Informer[Obj]:
        return Informer(
            watched.name, self._kube, watched.query(), watched.parse, lambda: None, settings,
            on_object=self._object_listener(watched), on_list=self._list_listener(watched),
        )  # fmt: skip

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._kube.configuration = load_configuration(self._kubeconfig)
        self._thread = threading.Thread(target=self._run, name="operator-caches", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._tasks = [self._loop.create_task(i.run()) for i in self.informers.values()]
        self._loop.run_forever()

    def wait_synced(self, timeout: float) -> None:
        """Block until every collection's first list is in."""

        async def synced() -> None:
            await asyncio.gather(*(i.wait_synced() for i in self.informers.values()))

        try:
            self._submit(synced()).result(timeout)
        except TimeoutError as exc:
            pending = [i.describe() for i in self.informers.values() if not i.synced]
            raise CacheNotSynced(
                f"no first list within {timeout:.0f} s of: {', '.join(pending)}"
            ) from exc

    def stop(self) -> None:
        if self._thread is None:
            return

        async def close() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._kube.close()
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self._loop)
        self._thread.join(timeout=30)
        self._thread = None

    # -- reads -------------------------------------------------------------------------------

    def get(self, watched: Watched, namespace: str | None, name: str) -> Obj | None:
        key = f"{namespace}/{name}" if namespace else name
        return self.informers[watched].get(key)

    def values(self, watched: Watched) -> list[Obj]:
        return list(self.informers[watched].values())

    def indexed(self, watched: Watched, key: str) -> list[Obj]:
        """The objects whose index key (``Watched.index``) is ``key``."""
        with self._lock:
            names = list(self._index[watched].get(key, ()))
        informer = self.informers[watched]
        return [obj for name in names if (obj := informer.get(name)) is not None]

    def holding(self, obj: Obj) -> Watched | None:
        """The collection an object belongs to, if the cache keeps it."""
        return next((w for w in self.collections if w.holds(obj)), None)

    def count(self) -> dict[str, int]:
        """Objects held per collection (for the operator's metrics)."""
        return {w.name: len(i.entries) for w, i in self.informers.items()}

    # -- writes through ------------------------------------------------------------------------

    def written(self, obj: Obj) -> None:
        """The API's answer to one of the operator's writes: in the cache at once (unless it
        already holds that version or a newer one)."""
        watched = self.holding(obj)
        if watched is None or watched not in self.informers:
            return

        async def merge() -> None:
            if self.informers[watched].merge(obj):
                self._reindex(watched, "MODIFIED", watched.parse(obj))

        if self._thread is None:  # not started (a test's cache): no other thread to hand it to
            asyncio.run(merge())
        else:
            self._submit(merge()).result(30)

    # -- internals ---------------------------------------------------------------------------

    def _submit(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _object_listener(self, watched: Watched) -> Callable[[str, Obj], None]:
        def heard(kind: str, obj: Obj) -> None:
            self._reindex(watched, kind, obj)
            if self._on_object is not None:
                self._on_object(watched, kind, obj)

        return heard

    def _list_listener(self, watched: Watched) -> Callable[[], None]:
        def listed() -> None:
            if watched.index is not None:
                self._rebuild(watched, self.informers[watched].entries.items())
            if self._on_list is not None:
                self._on_list(watched)

        return listed

    def _reindex(self, watched: Watched, kind: str, obj: Obj) -> None:
        if watched.index is None:
            return
        key, name = watched.index(obj), _name(obj)
        with self._lock:
            held = self._keys[watched].pop(name, None)
            if held is not None:
                self._index[watched][held].discard(name)
            if key is not None and kind != "DELETED":
                self._index[watched][key].add(name)
                self._keys[watched][name] = key

    def _rebuild(self, watched: Watched, entries: Iterable[tuple[str, Any]]) -> None:
        assert watched.index is not None
        fresh: defaultdict[str, set[str]] = defaultdict(set)
        keys = {}
        for name, entry in entries:
            if (key := watched.index(entry.value)) is not None:
                fresh[key].add(name)
                keys[name] = key
        with self._lock:
            self._index[watched], self._keys[watched] = fresh, keys


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])

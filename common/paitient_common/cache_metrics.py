"""Prometheus series of the watch-fed caches, computed from the informers at scrape time.

- ``paitient_cache_watch_restarts_total{cache, reason}``: watches restarted, by why (``gone``:
  410, listed again; ``stalled``: silent past the read timeout; ``disconnected``: the connection
  dropped; ``short``: ended at once, empty; ``oversize``: a line longer than any event the API
  server can send, ``MAX_EVENT_BYTES``; ``error``: the API answered an error);
- ``paitient_cache_age_seconds{cache}``: seconds since the cache was last known current;
- ``paitient_cache_objects{cache}``: objects held;
- ``paitient_cache_read_through_total{read, outcome}``: read-throughs of keys and tenants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paitient_common.informer import Informer


class CacheCollector(Collector):
    """Reads ``informers()`` and ``read_through()`` (key -> count) on every scrape."""

    def __init__(
        self,
        informers: Callable[[], Iterable[Informer[Any]]],
        read_through: Callable[[], Mapping[tuple[str, str], int]] = dict,
    ) -> None:
        self.informers = informers
        self.read_through = read_through

    def collect(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "paitient_cache_watch_restarts",
            "Watches of the key and tenant caches restarted, by reason.",
            labels=["cache", "reason"],
        )
        age = GaugeMetricFamily(
            "paitient_cache_age_seconds",
            "Seconds since the cache was last known current (list, event, bookmark, clean end).",
            labels=["cache"],
        )
        objects = GaugeMetricFamily(
            "paitient_cache_objects", "Objects held by the cache.", labels=["cache"]
        )
        for informer in self.informers():
            for reason, count in sorted(informer.restarts.items()):
                restarts.add_metric([informer.name, reason], count)
            if (seconds := informer.age()) is not None:
                age.add_metric([informer.name], seconds)
            objects.add_metric([informer.name], len(informer.entries))
        reads = CounterMetricFamily(
            "paitient_cache_read_through",
            "Keys and tenants read through from the API on a cache miss, by outcome.",
            labels=["read", "outcome"],
        )
        for (what, outcome), count in sorted(self.read_through().items()):
            reads.add_metric([what, outcome], count)
        yield from (restarts, age, objects, reads)

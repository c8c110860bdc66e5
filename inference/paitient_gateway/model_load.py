"""The model server's own load, read from vLLM's ``/metrics`` on 127.0.0.1 and exported with
the gateway's metrics, so an autoscaler that can reach only the gateway (vLLM listens on
loopback) still sees how many requests vLLM runs and how many wait for a slot.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

import aiohttp
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

RUNNING: Final = "vllm:num_requests_running"
WAITING: Final = "vllm:num_requests_waiting"
# A scrape reuses a reading this fresh: two scrapers (the operator, Prometheus) cost one read.
FRESH_SECONDS: Final = 0.5
READ_TIMEOUT_SECONDS: Final = 2.0


@dataclass(frozen=True)
class ModelLoad:
    """Requests vLLM runs and holds in its queue; NaN when it did not answer."""

    running: float = math.nan
    waiting: float = math.nan


def parse_model_load(text: str) -> ModelLoad:
    """The two gauges of a vLLM ``/metrics`` answer, summed over their label sets (one engine
    per model here, but vLLM labels by engine); NaN for one it did not export (pure)."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (RUNNING, WAITING):
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return ModelLoad(sums.get(RUNNING, math.nan), sums.get(WAITING, math.nan))


class ModelLoadReader(Collector):
    """Reads vLLM's metrics at most every ``FRESH_SECONDS`` (``refresh``, awaited by the
    gateway's ``/metrics`` handler) and exports what it last read."""

    def __init__(
        self,
        upstream_url: str,
        session: Callable[[], aiohttp.ClientSession | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = upstream_url.rstrip("/") + "/metrics"
        self._session = session
        self._clock = clock
        self._read_at = -math.inf
        self._lock = asyncio.Lock()
        self.load = ModelLoad()

    async def refresh(self) -> ModelLoad:
        async with self._lock:  # concurrent scrapes wait for one read
            if self._clock() - self._read_at >= FRESH_SECONDS:
                self.load = await self._read()
                self._read_at = self._clock()
        return self.load

    async def _read(self) -> ModelLoad:
        session = self._session()
        if session is None:
            return ModelLoad()
        timeout = aiohttp.ClientTimeout(total=READ_TIMEOUT_SECONDS)
        try:
            async with session.get(self._url, timeout=timeout) as response:
                if response.status != 200:
                    return ModelLoad()
                return parse_model_load(await response.text())
        except (TimeoutError, aiohttp.ClientError, ValueError, UnicodeDecodeError):
            return ModelLoad()  # vLLM still loading (its port is closed) or gone

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "paitient_gateway_model_requests_running",
            f"Requests the model server runs now (vLLM's {RUNNING}); NaN when it did not answer.",
            value=self.load.running,
        )
        yield GaugeMetricFamily(
            "paitient_gateway_model_requests_waiting",
            f"Requests queued in the model server (vLLM's {WAITING}); NaN when it did not answer.",
            value=self.load.waiting,
        )

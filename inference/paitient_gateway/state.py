"""The gateway's state, shared by every handler through ``app["gateway"]``: configuration, the
key directory, limits, the usage ledger and reporter, metrics, the upstream session and their
lifecycle. The routes (``app``) and the handlers (``proxy``) both import it; it imports neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
from aiohttp import web

from paitient_common.draining import Draining
from paitient_common.gateway_load import GatewayLoad
from paitient_common.keycache.directory import Directory, KeySource
from paitient_common.kubeapi import Kube
from paitient_common.store.connection import Store
from paitient_common.store.health import StoreHealth
from paitient_common.store.metrics import StoreMetrics
from paitient_gateway.admission import Limits, LocalLimits
from paitient_gateway.audit import audit_logger
from paitient_gateway.cache_salt import CacheSalts
from paitient_gateway.config import GatewayConfig
from paitient_gateway.errors import (
    UpstreamNotAccepting,
    upstream_failed,
    upstream_timeout,
)
from paitient_gateway.ledger import UsageLedger
from paitient_gateway.membership import Membership
from paitient_gateway.metrics import GatewayMetrics, operation_name
from paitient_gateway.model_load import ModelLoadReader
from paitient_gateway.report import UsageReporter
from paitient_gateway.shared_limits import WHILE_DOWN, DeploymentLimits, SharedLimits
from paitient_gateway.upstream import max_model_len_from
from paitient_gateway.usage import Usage

log = logging.getLogger("paitient.gateway")


class Gateway:
    """The gateway's state, shared by every handler through ``app["gateway"]``."""

    def __init__(
        self, config: GatewayConfig, key_source: KeySource, kube: Kube | None = None
    ) -> None:
        self.config = config
        self.key_source = key_source
        self.directory = Directory()
        self.metrics = GatewayMetrics()
        self.ledger = UsageLedger(
            config.ledger_dir, config.ledger_sync_interval, config.ledger_sync_batch
        )
        self.reporter = UsageReporter(
            kube, config.pod_name, config.namespace, config.deployment, self.ledger.counters
        )
        self.store: Store | None = None
        self.shared: SharedLimits | None = None
        self.limits: Limits
        if config.store is None:
            log.warning(
                "no shared store (PAITIENT_STORE_URL unset): this replica enforces every limit "
                "on its own, so N replicas admit up to N times a rate limit (docs/gateway.md)"
            )
            self.limits = LocalLimits(
                config.deployment_requests_per_minute,
                config.deployment_tokens_per_minute,
                self.reporter,
            )
        else:
            self.store = Store(config.store)
            store_metrics = StoreMetrics(self.metrics.registry)
            self.shared = SharedLimits(
                self.store,
                StoreHealth(config.store, WHILE_DOWN, store_metrics.changed),
                DeploymentLimits(
                    config.namespace,
                    config.deployment,
                    config.deployment_requests_per_minute,
                    config.deployment_tokens_per_minute,
                ),
                self.directory,
                self.ledger,
                Membership(
                    config.pod_name,
                    config.namespace,
                    config.deployment,
                    config.store_heartbeat_interval,
                ),
                self.metrics.fallback_admissions.inc,
            )
            self.limits = self.shared
        self._settling: set[asyncio.Task[None]] = set()
        self.audit = audit_logger()
        self.started = int(time.time())
        self._max_model_len = config.max_model_len
        self.session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.cache_salts = CacheSalts()
        self.draining = Draining()  # from SIGTERM on (paitient_common.draining)
        self.model_load = ModelLoadReader(config.upstream_url, lambda: self.session)
        self.metrics.registry.register(self.model_load)
        # Completions in flight (a stream until its last byte): what /healthz/load reports.
        self.completions_in_flight = 0
        self.metrics.in_flight_completions.set_function(lambda: self.completions_in_flight)
        self.metrics.draining.set_function(lambda: 1 if self.draining.draining else 0)

    # -- upstream ------------------------------------------------------------------------------

    async def open_upstream(self, path: str, body: bytes) -> aiohttp.ClientResponse:
        assert self.session is not None
        try:
            return await self.session.post(
                self.config.upstream_url + path,
                data=body,
                headers={"Content-Type": "application/json"},
            )
        except TimeoutError:
            raise upstream_timeout() from None
        except aiohttp.ClientConnectorError:
            # Nothing listens: vLLM keeps its port closed until the model is loaded.
            raise UpstreamNotAccepting() from None
        except aiohttp.ClientError:
            raise upstream_failed() from None

    async def max_model_len(self) -> int | None:
        """The model's context length: the spec's, or what vLLM's /v1/models reports (asked
        until it answers, then kept: a pod's model does not change)."""
        if self._max_model_len is None:
            self._max_model_len = await self._reported_max_model_len()
        return self._max_model_len

    async def _reported_max_model_len(self) -> int | None:
        assert self.session is not None
        try:
            async with self.session.get(
                self.config.upstream_url + "/v1/models", timeout=aiohttp.ClientTimeout(total=3)
            ) as response:
                if response.status != 200:
                    return None
                body = await response.json()
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        return max_model_len_from(body)

    async def load(self) -> GatewayLoad:
        """This gateway's load: its completions in flight, vLLM's own counts, and whether it is
        draining (what ``/healthz/load`` answers, to the front doors and the autoscaler)."""
        model = await self.model_load.refresh()
        return GatewayLoad(
            self.completions_in_flight,
            None if math.isnan(model.running) else model.running,
            None if math.isnan(model.waiting) else model.waiting,
            self.draining.draining,
        )

    async def upstream_healthy(self) -> bool:
        assert self.session is not None
        try:
            async with self.session.get(
                self.config.upstream_url + "/health", timeout=aiohttp.ClientTimeout(total=3)
            ) as response:
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    # -- accounting ----------------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (a settlement whose request is gone) to its end, even if the request's
        task is cancelled; shutdown waits for these."""
        task = asyncio.create_task(work)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def observe_usage(self, route: str, usage: Usage) -> None:
        op = operation_name(route)
        m = self.metrics
        m.token_usage.labels(op, "input").observe(usage.prompt_tokens)
        m.token_usage.labels(op, "output").observe(usage.completion_tokens)
        m.tokens.labels("input").inc(usage.prompt_tokens)
        m.tokens.labels("output").inc(usage.completion_tokens)
        # Running totals: re-summing every counter on each request grows with the ledger.
        m.ledger_tokens.labels("input").inc(usage.prompt_tokens)
        m.ledger_tokens.labels("output").inc(usage.completion_tokens)
        m.ledger_requests.inc()

    def _ledger_gauges(self) -> None:
        entries = self.ledger.counters.entries.values()
        self.metrics.ledger_tokens.labels("input").set(sum(c.prompt_tokens for c in entries))
        self.metrics.ledger_tokens.labels("output").set(sum(c.completion_tokens for c in entries))
        self.metrics.ledger_requests.set(sum(c.requests for c in entries))

    # -- lifecycle -----------------------------------------------------------------------------

    async def lifecycle(self, _app: web.Application) -> AsyncIterator[None]:
        replayed = self.ledger.open()
        self._ledger_gauges()
        log.info("usage ledger replayed: %d requests", replayed)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.config.upstream_pool_size, keepalive_timeout=30
            ),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.config.connect_timeout,
                sock_read=self.config.read_timeout,
            ),
        )
        self._tasks = [
            asyncio.create_task(self.key_source.run(self.directory)),
            asyncio.create_task(self.ledger.run_syncer()),
            asyncio.create_task(
                self.reporter.run(self.config.report_interval, self.metrics.report_failures.inc)
            ),
        ]
        if self.shared is not None:
            self._tasks.append(
                asyncio.create_task(
                    self.shared.run(
                        self.config.store_heartbeat_interval, self.config.report_interval
                    )
                )
            )
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._settling:  # settlements of requests that ended as the server stopped
                await asyncio.wait(self._settling, timeout=5)
            if self.shared is not None and self.store is not None:
                with contextlib.suppress(Exception):  # best effort: the counters catch up
                    await asyncio.wait_for(self.shared.push_counters(), 5)
                    await asyncio.wait_for(self.shared.leave(), 2)
                await self.store.close()
            with contextlib.suppress(Exception):  # best effort: the ledger has it anyway
                await asyncio.wait_for(self.reporter.flush(), 5)
            self.ledger.close()
            await self.session.close()

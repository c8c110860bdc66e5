"""Asks the gateways of the deployments in use for their load (``GET /healthz/load``), a few
times a second, over the same verified TLS as requests (the pod's address, the Service's name).
A gateway that does not answer within the timeout, or answers nonsense, has no report until it
does: its load is then this front door's own requests to it."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Final

import aiohttp

from paitient_api.replicas.router import ReplicaRouter
from paitient_api.routing import Route
from paitient_common.gateway_load import LOAD_PATH, GatewayLoad

log = logging.getLogger("paitient.api")
INTERVAL_SECONDS: Final = 0.25
TIMEOUT_SECONDS: Final = 1.0


class LoadPoller:
    def __init__(
        self,
        router: ReplicaRouter,
        session: Callable[[], aiohttp.ClientSession | None],
        context: Callable[[], ssl.SSLContext | None],
        interval: float = INTERVAL_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.router, self.session, self.context = router, session, context
        self.interval, self.timeout = interval, timeout

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception as exc:  # a bug must not stop the polls: say it, go on
                log.warning("polling the gateways' load failed: %s", type(exc).__name__)
            await asyncio.sleep(self.interval)

    async def poll_once(self) -> None:
        targets = self.router.poll_targets()
        if targets:
            await asyncio.gather(*(self._poll(route) for route in targets))

    async def _poll(self, route: Route) -> None:
        board = self.router.board
        asked = board.asking(route.url)
        board.report(route.url, await self._read(route), asked)

    async def _read(self, route: Route) -> GatewayLoad | None:
        session, context = self.session(), self.context()
        if session is None or context is None or not route.is_tls:
            return None
        try:
            async with session.get(
                route.url + LOAD_PATH,
                ssl=context,
                server_hostname=route.server_name,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if response.status != 200:
                    return None
                return GatewayLoad.from_json(await response.json(content_type=None))
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None

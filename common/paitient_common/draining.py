"""Stopping a server without dropping a request or a stream (SIGTERM in a pod).

First the server says it is leaving: its readiness answers 503 and every response carries
``Connection: close``, so kept-alive clients move to other replicas while Kubernetes takes the
pod out of its Service (``delay``: the endpoint update reaches every node's proxy in a moment,
not at once), and requests that still arrive meanwhile are served. Then it stops accepting
connections, closes idle ones and lets requests and streams in progress finish, for up to the
runners' ``shutdown_timeout``; the apps' cleanup (usage flushed) runs after that. The pod's
``terminationGracePeriodSeconds`` must cover delay, timeout and cleanup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import hdrs, web


@dataclass
class Draining:
    """Whether this server is leaving; readiness and every response read it."""

    draining: bool = False

    def install(self, app: web.Application) -> None:
        app.on_response_prepare.append(self._close_when_draining)

    async def _close_when_draining(self, _: web.Request, response: web.StreamResponse) -> None:
        if self.draining:  # the client's next request opens a connection elsewhere
            response.force_close()
            response.headers[hdrs.CONNECTION] = "close"


async def drain_and_stop(
    runners: Sequence[web.AppRunner],
    state: Draining,
    delay: float,
    log: logging.Logger,
    name: str,
) -> None:
    """Mark ``state`` draining, keep serving for ``delay`` seconds, then clean ``runners`` up in
    order (each stops listening and waits for its handlers up to its ``shutdown_timeout``)."""
    state.draining = True
    log.info(
        "%s stopping: not ready; serving %.0f s more while the Service lets go of this pod, "
        "then finishing the requests in progress", name, delay,
    )  # fmt: skip
    try:
        await asyncio.sleep(delay)
    finally:
        for runner in runners:
            await runner.cleanup()
    log.info("%s stopped", name)

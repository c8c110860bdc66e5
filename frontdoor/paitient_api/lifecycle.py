"""Serving until told to stop, then stopping without dropping a request or a stream.

At SIGTERM a replica first says it is leaving: ``/readyz`` answers 503 and every response
carries ``Connection: close``, so clients' kept-alive connections move to the other replicas
while Kubernetes takes this pod out of its Service (``shutdown_delay``: the endpoint update
reaches every node's proxy in a moment, not at once). Then it stops accepting connections,
closes the idle ones, and lets requests and streams in progress finish, for up to
``shutdown_timeout``; only what is still running then is cut. The pod's
``terminationGracePeriodSeconds`` must cover both (the chart sizes it so). The steps are
``paitient_common.draining``'s, which the gateway takes too.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from dataclasses import dataclass

from aiohttp import web

from paitient_common.draining import Draining, drain_and_stop

log = logging.getLogger("paitient.api")


@dataclass
class Lifecycle(Draining):
    """Whether this replica is leaving; ``/readyz`` and every response read it (kept in the
    app: ``lifecycle_of``)."""

    def install(self, app: web.Application) -> None:
        app[LIFECYCLE] = self
        super().install(app)


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)


def lifecycle_of(app: web.Application) -> Lifecycle:
    return app[LIFECYCLE]


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    shutdown_delay: float,
    shutdown_timeout: float,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT (or, when given, until ``stop`` is set), then
    drain as above."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
    stop = stop or asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    drained = False
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
        log.info(
            "front door listening on %s:%d (%s)", host, port, "https" if ssl_context else "http"
        )
        await stop.wait()
        # Stops listening, closes idle connections, waits for handlers (streams included) up
        # to shutdown_timeout, then runs the app's cleanup (watches, client sessions).
        drained = True
        await drain_and_stop([runner], lifecycle_of(app), shutdown_delay, log, "front door")
    finally:
        if not drained:  # start-up failed: nothing to drain
            await runner.cleanup()
        for sig in signals:
            loop.remove_signal_handler(sig)

"""Serving until told to stop, then stopping without dropping a request or a stream.

At SIGTERM a replica first says it is leaving: ``/readyz`` answers 503 and every response
carries ``Connection: close``, so clients' kept-alive connections move to the other replicas
while Kubernetes takes this pod out of its Service (``shutdown_delay``: the endpoint update
reaches every node's proxy in a moment, not at once). Then it stops accepting connections,
closes the idle ones, and lets requests and streams in progress finish, for up to
``shutdown_timeout``; only what is still running then is cut. The pod's
``terminationGracePeriodSeconds`` must cover both (the chart sizes it so).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from dataclasses import dataclass

from aiohttp import hdrs, web

log = logging.getLogger("paitient.api")


@dataclass
class Lifecycle:
    """Whether this replica is leaving; ``/readyz`` and every response read it."""

    draining: bool = False

    def install(self, app: web.Application) -> None:
        app[LIFECYCLE] = self
        app.on_response_prepare.append(self._close_when_draining)

    async def _close_when_draining(self, _: web.Request, response: web.StreamResponse) -> None:
        if self.draining:  # the client's next request opens a connection to another replica
            response.force_close()
            response.headers[hdrs.CONNECTION] = "close"  # the headers are written after this


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
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
        log.info(
            "front door listening on %s:%d (%s)", host, port, "https" if ssl_context else "http"
        )
        await stop.wait()
        lifecycle_of(app).draining = True
        log.info(
            "stopping: not ready; serving %.0f s more while the Service lets go of this replica, "
            "then finishing requests in progress (up to %.0f s)", shutdown_delay, shutdown_timeout,
        )  # fmt: skip
        await asyncio.sleep(shutdown_delay)
    finally:
        # Stops listening, closes idle connections, waits for handlers (streams included) up
        # to shutdown_timeout, then runs the app's cleanup (watches, client sessions).
        await runner.cleanup()
        for sig in signals:
            loop.remove_signal_handler(sig)
    log.info("front door stopped")

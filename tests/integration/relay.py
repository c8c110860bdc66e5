"""A TCP relay on 127.0.0.1 in front of the API server, to give one client a slow or a broken
link: every byte can be delayed (``latency``), and ``cut()`` drops every connection and refuses
new ones until ``restore()``. TLS passes through untouched (the API server's certificate names
127.0.0.1, whatever the port), so a kubeconfig only needs its ``server`` pointed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from paitient_localcluster.controlplane.kubeconfig import write_kubeconfig

T = TypeVar("T")


class Relay:
    """Forwards ``127.0.0.1:<port>`` to ``target`` (``host:port``) from a thread of its own."""

    def __init__(self, target: str, latency: float = 0.0) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.latency = latency
        self.refused = 0  # connections turned away while cut: proof the client tried
        self._cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> Relay:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._call(self._shutdown())
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones: the API is unreachable."""
        self._cut = True
        self._call(self._drop_all())

    def restore(self) -> None:
        self._cut = False

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- in the relay's own loop ------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _shutdown(self) -> None:
        await self._drop_all()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; with latency, each chunk leaves ``latency`` after it arrived
        (a delayed link, not a throttled one: chunks in flight overlap)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.latency, data))
        finally:
            queue.put_nowait((0.0, b""))
            with contextlib.suppress(Exception):
                await sender
            with contextlib.suppress(Exception):
                writer.write_eof()


def relayed_kubeconfig(kubeconfig: Path, relay: Relay, path: Path) -> Path:
    """A copy of ``kubeconfig`` whose every cluster is reached through ``relay``."""
    document = yaml.safe_load(kubeconfig.read_text())
    for entry in document["clusters"]:
        server = urlsplit(entry["cluster"]["server"])
        entry["cluster"]["server"] = f"{server.scheme}://{relay.server}"
    return write_kubeconfig(path, document)


@contextlib.contextmanager
def relay_to_api_server(kubeconfig: Path, latency: float = 0.0) -> Iterator[Relay]:
    """A started relay to ``kubeconfig``'s API server, stopped afterwards."""
    document = yaml.safe_load(kubeconfig.read_text())
    server = urlsplit(document["clusters"][0]["cluster"]["server"])
    relay = Relay(f"{server.hostname}:{server.port}", latency).start()
    try:
        yield relay
    finally:
        relay.stop()

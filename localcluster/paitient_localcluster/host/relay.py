"""Host loopback -> cluster namespace: a TCP relay, like kind's port mappings.

The cluster runs entirely inside its network namespace. This process binds its listeners on the
host's 127.0.0.1 first, then moves itself into the namespace: every connection it opens from
then on is made inside (a socket keeps the namespace it was created in), so host programs reach
``127.0.0.1:<port>`` as before while no host interface, route or rule is ever changed.

    python -m paitient_localcluster.host.relay --netns /run/netns/NAME LISTEN_PORT=TARGET_HOST:PORT ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from .linux import CLONE_NEWNET, setns

CHUNK = 256 * 1024


@dataclass(frozen=True)
class PortMapping:
    """One host port and where, inside the namespace, its connections go."""

    listen_port: int
    target_host: str
    target_port: int

    @classmethod
    def parse(cls, text: str) -> PortMapping:
        """``16443=127.0.0.1:16443`` (pure)."""
        port, _, target = text.partition("=")
        host, _, target_port = target.rpartition(":")
        if not (port.isdigit() and target_port.isdigit() and host):
            raise ValueError(f"not a mapping LISTEN_PORT=HOST:PORT: {text!r}")
        return cls(int(port), host, int(target_port))

    def __str__(self) -> str:
        return f"{self.listen_port}={self.target_host}:{self.target_port}"


def relay_argv(netns_path: Path, mappings: list[PortMapping]) -> list[str]:
    return [sys.executable, "-m", "paitient_localcluster.host.relay", "--netns", str(netns_path),
            *map(str, mappings)]  # fmt: skip


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other direction may still be talking
    except (ConnectionError, OSError):
        writer.transport.abort()


async def _serve_connection(
    mapping: PortMapping, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
) -> None:
    try:
        upstream_r, upstream_w = await asyncio.open_connection(
            mapping.target_host, mapping.target_port
        )
    except OSError:
        client_w.transport.abort()  # the client sees a reset, as if nothing listened
        return
    try:
        await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))
    finally:
        for w in (client_w, upstream_w):
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def _run(listeners: list[tuple[PortMapping, socket.socket]]) -> None:
    servers = []
    for mapping, sock in listeners:

        async def handle(
            r: asyncio.StreamReader, w: asyncio.StreamWriter, m: PortMapping = mapping
        ) -> None:
            await _serve_connection(m, r, w)

        servers.append(await asyncio.start_server(handle, sock=sock))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paitient-relay", description=__doc__)
    parser.add_argument("--netns", type=Path, required=True)
    parser.add_argument("mappings", nargs="+", type=PortMapping.parse)
    args = parser.parse_args(argv)
    # Listeners first, in the host's namespace; then this (single-threaded) process moves in.
    listeners = [(m, _listen(m.listen_port)) for m in args.mappings]
    fd = os.open(args.netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)
    asyncio.run(_run(listeners))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What reaches a port on a pod's loopback, read off the wire inside the pod's network namespace.

In a model pod the gateway calls vLLM on 127.0.0.1:8000 over plain HTTP. To see exactly what
vLLM receives, without changing the product or its pod layout, a packet socket is opened on the
pod's ``lo`` from the host (root; the pod's network namespace is found by its inode, which a
``kubectl exec`` in the pod reads) and every TCP segment to that port is kept, then put back
together per connection and split into HTTP requests. Nothing is sent, nothing is changed.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from paitient_localcluster.host.linux import call_in_netns
from tests.integration.node_pods import exec_python

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # loopback shows each segment twice: keep the copy that arrives
IPPROTO_TCP = 6


@dataclass(frozen=True)
class CapturedRequest:
    request_line: str
    headers: list[tuple[str, str]]
    body: bytes


def pod_netns(kubeconfig: Path, namespace: str, pod: str, container: str) -> Path:
    """The pod's network namespace as a host path (``/proc/<pid>/ns/net`` of a process in it)."""
    done = exec_python(kubeconfig, namespace, pod, "import os; print(os.readlink('/proc/self/ns/net'))",
                       container=container)  # fmt: skip
    assert done.returncode == 0, done.stderr
    inode = done.stdout.strip()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") == inode:
                    return entry / "ns" / "net"
            except OSError:  # gone meanwhile, or a kernel thread
                continue
    raise AssertionError(f"no process on this host is in {namespace}/{pod}'s {inode}")


@dataclass
class LoopbackCapture:
    """Segments to ``port`` on ``lo`` of the network namespace ``netns``, while in a ``with``."""

    netns: Path
    port: int
    _streams: dict[tuple[bytes, int], dict[int, bytes]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _socket: socket.socket | None = None

    def __enter__(self) -> LoopbackCapture:
        def open_socket() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind(("lo", 0))
            sock.settimeout(0.2)
            return sock

        self._socket = call_in_netns(self.netns, open_socket)  # the socket stays in the pod's
        self._thread = threading.Thread(target=self._read, name="loopback-capture", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()

    def _read(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                frame, address = self._socket.recvfrom(262144)
            except TimeoutError:
                continue
            if address[2] != PACKET_OUTGOING:
                self._keep(frame[14:])  # past the loopback's Ethernet header

    def _keep(self, packet: bytes) -> None:
        if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != IPPROTO_TCP:
            return
        ip_header = (packet[0] & 0x0F) * 4
        total = struct.unpack("!H", packet[2:4])[0]
        tcp = packet[ip_header:total]
        source_port, dest_port, sequence = struct.unpack("!HHI", tcp[:8])
        payload = tcp[(tcp[12] >> 4) * 4 :]
        if dest_port == self.port and payload:
            with self._lock:
                self._streams.setdefault((packet[12:16], source_port), {})[sequence] = payload

    def requests(self) -> list[CapturedRequest]:
        """Every HTTP request seen so far, in the order of their connections' ports."""
        with self._lock:
            streams = {key: dict(segments) for key, segments in self._streams.items()}
        found = []
        for key in sorted(streams):
            segments = streams[key]
            found += list(_http_requests(b"".join(segments[s] for s in sorted(segments))))
        return found


def _http_requests(data: bytes) -> Iterator[CapturedRequest]:
    """Requests one after another on a connection (pure; bodies by Content-Length)."""
    while b"\r\n\r\n" in data:
        head, data = data.split(b"\r\n\r\n", 1)
        line, *fields = head.decode("latin-1").split("\r\n")
        headers = [(n.strip(), v.strip()) for n, _, v in (f.partition(":") for f in fields)]
        length = next((int(v) for n, v in headers if n.lower() == "content-length"), 0)
        body, data = data[:length], data[length:]
        yield CapturedRequest(line, headers, body)

"""A TCP proxy on 127.0.0.1 in front of the API server, whose connections a test can break:
``drop()`` resets every open connection (as a restarted API server or a lost route does);
``freeze()`` stops moving bytes on every connection, open or new, without closing any (a stalled
network: nothing arrives and nothing says so) until ``thaw()``. TLS passes through untouched.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import yaml

from paitient_localcluster.controlplane.kubeconfig import write_kubeconfig


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def drop(self) -> int:
        """Cut every open connection at once, mid-stream; how many sockets there were. (A
        shutdown, not a close, so the threads reading them wake up; they then close them with
        no lingering, which resets whatever is left.)"""
        with self._lock:
            open_now, self._sockets = self._sockets, set()
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
        return len(open_now)

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()  # frozen: hold the bytes, close nothing
                if self._closed.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._sockets -= {src, dst}


def api_port(kubeconfig: Path) -> int:
    """The API server's port, as ``kubeconfig`` names it."""
    doc = yaml.safe_load(kubeconfig.read_text())
    return int(doc["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])


def kubeconfig_through(kubeconfig: Path, port: int, path: Path) -> Path:
    """``kubeconfig`` with the API server reached on ``port`` (a proxy's) instead."""
    doc: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    for cluster in doc["clusters"]:
        cluster["cluster"]["server"] = re.sub(r":\d+$", f":{port}", cluster["cluster"]["server"])
    write_kubeconfig(path, doc)
    return path

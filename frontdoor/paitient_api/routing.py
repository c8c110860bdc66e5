"""Where ``generate`` goes: a URL to connect to, and the name the gateway's certificate must
carry (checked with TLS SNI and the host-name check).

In a cluster the URL is the gateway's Service, ``https://{name}.{namespace}.svc:8443``, and the
name to verify is its host. Locally a routes file (written by the local data plane) maps
``namespace/name`` to ``{"url": "https://127.0.0.1:<port>", "serverName": "<name>.<ns>.svc"}``:
the gateway listens on loopback but holds the certificate of its Service. A plain string value
is a URL whose own host is verified. An entry may list ``replicas`` (``[{"url", "pod"}, ...]``,
one per pod, the name to verify shared): requests are then spread over them in turn, as a
Service would.

One replica (``replica``): the front door's replica picker dials a pod itself. In a cluster that
is the pod's address and port from its EndpointSlice, verified as the Service's name (the
certificate names the Service, never a pod address: the pod is the gateway only if it holds the
Service's key); locally, the routes file's URL of that pod.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from paitient_common.routes_file import RoutesFile, pod_urls

IN_CLUSTER = "https://{name}.{namespace}.svc:8443"


@dataclass(frozen=True)
class Route:
    """A gateway: where to connect, and which name to verify (None: the URL's host)."""

    url: str
    server_name: str | None = None

    @property
    def is_tls(self) -> bool:
        return self.url.startswith("https://")


def _route(entry: Any, turn: int = 0) -> Route | None:
    """The route of a routes-file entry; ``turn`` picks among its replicas (pure)."""
    if isinstance(entry, str):
        return Route(entry.rstrip("/"))
    if not isinstance(entry, dict):
        return None
    urls = [
        r["url"]
        for r in entry.get("replicas") or []
        if isinstance(r, dict) and isinstance(r.get("url"), str)
    ]
    if not urls and isinstance(entry.get("url"), str):
        urls = [entry["url"]]
    if not urls:
        return None
    name = entry.get("serverName")
    return Route(urls[turn % len(urls)].rstrip("/"), str(name) if name else None)


def _pod_route(entry: Any, pod: str) -> Route | None:
    """The route of one pod in a routes-file entry (pure)."""
    url = pod_urls(entry).get(pod)
    if url is None:
        return None
    name = entry.get("serverName")
    return Route(url, str(name) if name else None)


@dataclass
class GatewayRoute:
    """``template`` may use ``{name}`` and ``{namespace}``; a value starting with ``file:`` names
    a JSON routes file, re-read when it changes."""

    template: str = IN_CLUSTER
    _turns: itertools.count[int] = field(default_factory=itertools.count)
    _file: RoutesFile | None = None

    @property
    def local(self) -> bool:
        return self.template.startswith("file:")

    def route(self, name: str, namespace: str) -> Route | None:
        """The gateway's route, or None when there is none yet. The routes file is looked at on
        every call (one ``stat``): its writer replaces it whole, before any pod it routes to is
        reported Ready, so a deployment that is ready is always found."""
        if not self.local:
            return Route(self.template.format(name=name, namespace=namespace).rstrip("/"))
        table = self._read()
        return (
            None if table is None else _route(table.get(f"{namespace}/{name}"), next(self._turns))
        )

    def replica(self, name: str, namespace: str, pod: str, host: str, port: int) -> Route | None:
        """The route to one pod of the deployment (its EndpointSlice's ``host`` and ``port``),
        verified as the Service's name; None where pods cannot be dialed one by one (a plain
        HTTP template, or a pod the routes file does not list yet)."""
        if self.local:
            table = self._read()
            return None if table is None else _pod_route(table.get(f"{namespace}/{name}"), pod)
        service = urlsplit(self.template.format(name=name, namespace=namespace))
        if service.scheme != "https" or not service.hostname:
            return None
        return Route(f"https://{host}:{port}", service.hostname)

    def _read(self) -> dict[str, Any] | None:
        if self._file is None:
            self._file = RoutesFile(Path(self.template.removeprefix("file:")))
        return self._file.table()

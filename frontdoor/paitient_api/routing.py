"""Where ``generate`` goes: a URL to connect to, and the name the gateway's certificate must
carry (checked with TLS SNI and the host-name check).

In a cluster the URL is the gateway's Service, ``https://{name}.{namespace}.svc:8443``, and the
name to verify is its host. Locally a routes file (written by the local data plane) maps
``namespace/name`` to ``{"url": "https://127.0.0.1:<port>", "serverName": "<name>.<ns>.svc"}``:
the gateway listens on loopback but holds the certificate of its Service. A plain string value
is a URL whose own host is verified. An entry may list ``replicas`` (``[{"url"}, ...]``, one per
pod, the name to verify shared): requests are then spread over them in turn, as a Service would.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class GatewayRoute:
    """``template`` may use ``{name}`` and ``{namespace}``; a value starting with ``file:`` names
    a JSON routes file, re-read when it changes."""

    template: str = IN_CLUSTER
    _table: dict[str, Any] = field(default_factory=dict)
    _seen: tuple[int, int, int] | None = None
    _turns: itertools.count[int] = field(default_factory=itertools.count)

    def route(self, name: str, namespace: str) -> Route | None:
        """The gateway's route, or None when there is none yet. The routes file is looked at on
        every call (one ``stat``): its writer replaces it whole, before any pod it routes to is
        reported Ready, so a deployment that is ready is always found."""
        if not self.template.startswith("file:"):
            return Route(self.template.format(name=name, namespace=namespace).rstrip("/"))
        path = Path(self.template.removeprefix("file:"))
        try:
            stat = path.stat()
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a replaced file: a new inode
            if seen != self._seen:
                self._table, self._seen = json.loads(path.read_text()), seen
        except (OSError, ValueError):
            return None
        return _route(self._table.get(f"{namespace}/{name}"), next(self._turns))

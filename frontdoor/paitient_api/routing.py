"""Where ``generate`` goes: the deployment's gateway Service (in a cluster), a URL template, or a
routes file (local runs, written by the local data plane), as ``namespace/name -> URL``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

IN_CLUSTER = "http://{name}.{namespace}.svc:8443"


@dataclass
class GatewayRoute:
    """``template`` may use ``{name}`` and ``{namespace}``; a value starting with ``file:`` names
    a JSON routes file, re-read when it changes."""

    template: str = IN_CLUSTER
    _table: dict[str, str] = field(default_factory=dict)
    _seen: tuple[int, int, int] | None = None

    def url(self, name: str, namespace: str) -> str | None:
        """The gateway's URL, or None when there is none yet. The routes file is looked at on
        every call (one ``stat``): its writer replaces it whole, before any pod it routes to is
        reported Ready, so a deployment that is ready is always found."""
        if not self.template.startswith("file:"):
            return self.template.format(name=name, namespace=namespace).rstrip("/")
        path = Path(self.template.removeprefix("file:"))
        try:
            stat = path.stat()
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a replaced file: a new inode
            if seen != self._seen:
                self._table, self._seen = json.loads(path.read_text()), seen
        except (OSError, ValueError):
            return None
        return self._table.get(f"{namespace}/{name}")

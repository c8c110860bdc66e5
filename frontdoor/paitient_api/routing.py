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
    _mtime: float = -1.0

    def url(self, name: str, namespace: str) -> str | None:
        if not self.template.startswith("file:"):
            return self.template.format(name=name, namespace=namespace).rstrip("/")
        path = Path(self.template.removeprefix("file:"))
        try:
            mtime = path.stat().st_mtime
            if mtime != self._mtime:
                self._table, self._mtime = json.loads(path.read_text()), mtime
        except (OSError, ValueError):
            return None
        return self._table.get(f"{namespace}/{name}")

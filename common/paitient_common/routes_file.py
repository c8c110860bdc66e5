"""The local data plane's routes file as its readers (the front door, the operator's autoscaler)
see it: ``{"<ns>/<name>": {"url", "serverName", "replicas": [{"url", "pod"}], ...}}``, replaced
whole by its writer and re-read when it changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RoutesFile:
    path: Path
    _table: dict[str, Any] = field(default_factory=dict)
    _seen: tuple[int, int, int] | None = None

    def table(self) -> dict[str, Any] | None:
        """The routes now (one ``stat`` when unchanged); None while there is no file or it does
        not parse."""
        try:
            stat = self.path.stat()
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a replaced file: a new inode
            if seen != self._seen:
                self._table, self._seen = json.loads(self.path.read_text()), seen
        except (OSError, ValueError):
            return None
        return self._table


def pod_urls(entry: Any) -> dict[str, str]:
    """Each replica's URL by its pod's name, in one deployment's entry (pure)."""
    if not isinstance(entry, dict):
        return {}
    return {
        str(replica["pod"]): str(replica["url"]).rstrip("/")
        for replica in entry.get("replicas") or []
        if isinstance(replica, dict) and replica.get("pod") and replica.get("url")
    }

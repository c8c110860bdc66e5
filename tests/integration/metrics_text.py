"""Reading one series out of a Prometheus text page (a front door's or a gateway's /metrics),
for the routing tests and bench-routing alike."""

from __future__ import annotations

import re


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        found = re.match(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$", line)
        if found and all(f'{k}="{v}"' in found.group(1) for k, v in labels.items()):
            total += float(found.group(2))
    return total

"""Reading a figure from Prometheus' text format, as tests and benchmarks scrape it (a front
door's, a gateway's, the operator's /metrics)."""

from __future__ import annotations

import urllib.request


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when there are none)."""
    total = 0.0
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def scrape(url: str) -> str:
    return urllib.request.urlopen(url, timeout=10).read().decode()

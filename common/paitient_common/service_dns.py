"""A cluster Service's DNS name (``name.namespace.svc``, or with ``.cluster.local``), parsed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceName:
    name: str
    namespace: str


def service_of(host: str) -> ServiceName | None:
    """The Service ``host`` names, None for any other host (pure)."""
    labels = host.rstrip(".").split(".")
    if len(labels) >= 3 and labels[2] == "svc" and labels[3:] in ([], ["cluster", "local"]):
        return ServiceName(labels[0], labels[1])
    return None

"""A deployment's Ready gateways, read from the EndpointSlices of its Service (pure).

The operator names a deployment's Service like the deployment and labels it
``app.kubernetes.io/name=paitient-model``; the EndpointSlice controller copies the Service's
labels onto its slices and adds ``kubernetes.io/service-name``, so one cluster-wide watch
selects every model's slices and nothing else. An endpoint counts while its ``ready`` condition
is true (or unset, which the API defines as ready); a pod that is terminating or failing its
readiness probe is not ready.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from paitient_common.kubeapi import Obj
from paitient_common.kubeasync import Query

MODEL_SERVICE_LABEL: Final = "app.kubernetes.io/name=paitient-model"
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
SLICES: Final = Query("discovery.k8s.io/v1", "EndpointSlice", label_selector=MODEL_SERVICE_LABEL)


@dataclass(frozen=True, order=True)
class Endpoint:
    """One Ready gateway: ``name`` is its pod's (what the hash ring places), or its address when
    the slice names no pod."""

    name: str
    address: str
    port: int

    @property
    def host(self) -> str:
        """The address as a URL's host (an IPv6 address in brackets)."""
        return f"[{self.address}]" if ":" in self.address else self.address


@dataclass(frozen=True)
class SliceEndpoints:
    """What one EndpointSlice says: its deployment (``namespace/name``) and Ready endpoints."""

    deployment: str
    endpoints: tuple[Endpoint, ...]


def _port(ports: Any) -> int | None:
    """The slice's TCP port: the Service exposes the gateway's port and nothing else."""
    for port in ports or []:
        if isinstance(port, dict) and port.get("protocol", "TCP") == "TCP":
            number = port.get("port")
            if isinstance(number, int) and 0 < number < 65536:
                return number
    return None


def _ready(endpoint: dict[str, Any]) -> bool:
    return (endpoint.get("conditions") or {}).get("ready") is not False


def parse_slice(obj: Obj) -> SliceEndpoints | None:
    """The Ready endpoints of one EndpointSlice; None when it belongs to no Service or has no
    port yet."""
    meta = obj.get("metadata") or {}
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    port = _port(obj.get("ports"))
    if not service or port is None:
        return None
    found = []
    for endpoint in obj.get("endpoints") or []:
        addresses = endpoint.get("addresses") or []
        if not isinstance(endpoint, dict) or not addresses or not _ready(endpoint):
            continue
        target = endpoint.get("targetRef") or {}
        name = target.get("name") if target.get("kind") == "Pod" else None
        found.append(Endpoint(str(name or addresses[0]), str(addresses[0]), port))
    return SliceEndpoints(f"{meta.get('namespace', '')}/{service}", tuple(found))


def by_deployment(slices: Iterable[SliceEndpoints | None]) -> dict[str, tuple[Endpoint, ...]]:
    """Every deployment's Ready endpoints across its slices, sorted by name, each name once (a
    pod moving between two slices may show in both for a moment)."""
    merged: dict[str, dict[str, Endpoint]] = {}
    for part in slices:
        if part is not None:
            named = merged.setdefault(part.deployment, {})
            for endpoint in part.endpoints:
                named.setdefault(endpoint.name, endpoint)
    return {key: tuple(sorted(named.values())) for key, named in merged.items() if named}

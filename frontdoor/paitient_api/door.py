"""What the handlers share: the cluster, the callers' keys, the way to the gateways."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from paitient_api import mapping
from paitient_api.gateway_client import GatewayTrust
from paitient_api.hold import DEFAULT_HOLD_SECONDS, Holds
from paitient_api.replicas.router import ReplicaRouter
from paitient_api.routing import GatewayRoute
from paitient_common.keycache.directory import Directory
from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.store.connection import Store
from paitient_common.store.health import StoreHealth

log = logging.getLogger("paitient.api")
MD = (mapping.API_VERSION, mapping.KIND)
K8S_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)


@dataclass
class FrontDoor:
    """What the handlers need: the cluster, the callers' keys, and the way to the gateways."""

    kube: Kube
    callers: Directory  # keys and tenants, watch-fed, read through on a miss (``verify``)
    route: GatewayRoute
    trust: GatewayTrust  # the CAs the gateways' certificates must chain to
    http: aiohttp.ClientSession | None = None
    # The shared store (idempotency records, usage the moment it is spent); None: none.
    store: Store | None = None
    store_health: StoreHealth | None = None
    # How long a request waits for a deployment starting from zero replicas (hold.py).
    hold_seconds: float = DEFAULT_HOLD_SECONDS
    # The replica picker (EndpointSlices, loads, spec.routing); None: every request to the
    # deployment's Service.
    replicas: ReplicaRouter | None = None
    holds: Holds = field(init=False)

    def __post_init__(self) -> None:
        self.holds = Holds(self.read_deployment, self.patch_deployment, self.hold_seconds)

    async def k8s(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the Kubernetes API off the event loop, riding out what the API server says is
        momentary (429 while a new resource's storage initialises, 5xx, an uncounted quota)."""
        for delay in (*K8S_RETRY_DELAYS, None):
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except KubeError as exc:
                if delay is None or not _transient(exc):
                    raise
                log.warning(
                    "kubernetes API answered %s %s; retrying in %.1f s",
                    exc.status,
                    exc.reason,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def read_deployment(self, namespace: str, name: str) -> Obj | None:
        found: Obj | None = await self.k8s(self.kube.get, *MD, name, namespace=namespace)
        return found

    async def patch_deployment(self, namespace: str, name: str, patch: Obj) -> object:
        return await self.k8s(self.kube.patch, *MD, name, patch, namespace=namespace)

    async def config_map(self, namespace: str, name: str) -> Any:
        """A ConfigMap, or None (the gateways' CA bundle is one)."""
        return await self.k8s(self.kube.get, "v1", "ConfigMap", name, namespace=namespace)


def _transient(exc: KubeError) -> bool:
    return (
        exc.status == 429
        or exc.status >= 500
        or (exc.status == 403 and "status unknown for quota" in exc.message)
    )

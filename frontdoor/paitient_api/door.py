"""What the handlers share: the cluster, the callers' keys, the way to the gateways."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from paitient_api.routing import GatewayRoute
from paitient_common.kubeapi import Kube, KubeError
from paitient_gateway.keysource import Directory

log = logging.getLogger("paitient.api")
K8S_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
# A gateway that refuses the connection of a deployment just reported Ready: in a cluster the
# Service's endpoints reach kube-proxy up to its sync period (1 s by default) after the pod
# turned Ready. Nothing was sent, so trying again is safe; 2.5 s in all covers that window.
GATEWAY_CONNECT_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8, 1.0)


@dataclass
class FrontDoor:
    """What the handlers need: the cluster, the callers' keys, and the way to the gateways."""

    kube: Kube
    callers: Directory  # keys and tenants, watch-fed, read through on a miss (``verify``)
    route: GatewayRoute
    http: aiohttp.ClientSession | None = None

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

    async def post_to_gateway(
        self, url: str, headers: dict[str, str], *, json: Any = None, data: bytes | None = None
    ) -> aiohttp.ClientResponse:
        """POST to a deployment's gateway, retrying only a refused or unresolved connection
        (the request was never sent), for the few seconds a new endpoint takes to be routed."""
        assert self.http is not None
        for delay in (*GATEWAY_CONNECT_RETRY_DELAYS, None):
            try:
                return await self.http.post(url, json=json, data=data, headers=headers)
            except aiohttp.ClientConnectorError:
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


def _transient(exc: KubeError) -> bool:
    return (
        exc.status == 429
        or exc.status >= 500
        or (exc.status == 403 and "status unknown for quota" in exc.message)
    )

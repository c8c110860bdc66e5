"""The watch that keeps the replica picker's endpoints: every model Service's EndpointSlices,
cluster-wide, through the shared informer (list, then watch; relist after errors)."""

from __future__ import annotations

from paitient_api.replicas.endpoints import SLICES, parse_slice
from paitient_api.replicas.router import ReplicaRouter
from paitient_common.informer import Informer, WatchSettings
from paitient_common.kubeasync import AsyncKube


async def watch_endpoint_slices(
    router: ReplicaRouter, kubeconfig: str | None, settings: WatchSettings | None = None
) -> None:
    """Feed ``router`` until cancelled."""
    kube = await AsyncKube.from_kubeconfig(kubeconfig)
    try:
        informer = Informer(
            "endpointslices",
            kube,
            SLICES,
            parse_slice,
            lambda: router.update(informer.values()),
            settings,
        )
        await informer.run()
    finally:
        await kube.close()

"""The replica picker: from a deployment's Ready endpoints (kept by a watch of its
EndpointSlices), its ``spec.routing`` and the replicas' loads, the routes a request tries in
order. An empty answer means no Ready endpoint is known (the watch not synced yet, no rights to
read EndpointSlices, pods that cannot be dialed one by one): the request then goes to the
deployment's Service, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import ValidationError

from paitient_api.replicas.choose import order
from paitient_api.replicas.endpoints import Endpoint, SliceEndpoints, by_deployment
from paitient_api.replicas.loads import Clock, Lease, LoadBoard
from paitient_api.replicas.metrics import LOAD_RATIO, PICKS
from paitient_api.replicas.prefix import prefix_key
from paitient_api.replicas.ring import capacity, ring_of
from paitient_api.routing import GatewayRoute, Route
from paitient_common.kubeapi import Obj
from paitient_common.resources.modeldeployment import RoutingSpec

log = logging.getLogger("paitient.api")
# A deployment's replicas' loads are polled while it had a request this recently.
ACTIVE_SECONDS: Final = 60.0
# A replica that has just started from zero is Ready in the deployment's status a moment before
# its EndpointSlice reaches this front door's watch: a held request waits this long for it.
WOKEN_ENDPOINT_SECONDS: Final = 5.0


def routing_of(md: Obj) -> RoutingSpec:
    """The deployment's routing settings; the defaults for an object stored before the field
    existed (or one the CRD let through that pydantic refuses: never a failed request)."""
    try:
        return RoutingSpec.model_validate((md.get("spec") or {}).get("routing") or {})
    except ValidationError:
        return RoutingSpec()


class ReplicaRouter:
    def __init__(self, routes: GatewayRoute, board: LoadBoard | None = None,
                 clock: Clock = time.monotonic) -> None:  # fmt: skip
        self.routes = routes
        self.board = board or LoadBoard(clock)
        self.clock = clock
        self.endpoints: dict[str, tuple[Endpoint, ...]] = {}
        self._active: dict[str, float] = {}
        self._turns: dict[str, int] = {}
        self._changed = asyncio.Event()

    def start(self, route: Route) -> Lease:
        """Count a request to ``route`` against its load until its lease is released."""
        return self.board.start(route.url)

    def update(self, slices: Iterable[SliceEndpoints | None]) -> None:
        """Every model Service's EndpointSlices as the watch now holds them."""
        self.endpoints = by_deployment(slices)
        self._changed.set()  # wake whoever waits for an endpoint (``until_known``)
        self._changed = asyncio.Event()

    async def until_known(
        self, namespace: str, name: str, seconds: float = WOKEN_ENDPOINT_SECONDS
    ) -> bool:
        """Whether the deployment has a replica this front door can dial, waiting up to
        ``seconds`` for the watch to show one (a replica that has just started from zero)."""
        deadline = self.clock() + seconds
        while not self.dialable(namespace, name):
            left = deadline - self.clock()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return False
        return True

    def dialable(self, namespace: str, name: str) -> dict[str, Route]:
        """The deployment's Ready replicas this front door can dial, by endpoint name."""
        found = {}
        for endpoint in self.endpoints.get(f"{namespace}/{name}", ()):
            route = self.routes.replica(
                name, namespace, endpoint.name, endpoint.host, endpoint.port
            )
            if route is not None:
                found[endpoint.name] = route
        return found

    def choose(self, md: Obj, tenant: str, body: Mapping[str, Any] | None) -> list[Route]:
        """The routes to try, in order (empty: go to the Service)."""
        meta = md["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        replicas = self.dialable(namespace, name)
        if not replicas:
            return []
        deployment = f"{namespace}/{name}"
        self._active[deployment] = self.clock()
        settings = routing_of(md)
        urls = {n: route.url for n, route in replicas.items()}
        by_url = self.board.estimates(urls.values())
        loads = {n: by_url[url] for n, url in urls.items()}
        turn = self._turns.get(deployment, 0)
        self._turns[deployment] = turn + 1
        key = prefix_key(tenant, body or {}, settings.prefix_length)
        picked = order(settings.strategy, list(replicas), loads, key, settings.load_bound, turn)
        # A replica being scaled down is still in the slice until its readiness probe fails:
        # it serves, but only when nothing else does.
        leaving = self.board.draining(urls.values())
        picked.sort(key=lambda n: urls[n] in leaving)
        self._observe(settings, picked, loads, key)
        return [replicas[n] for n in picked]

    def _observe(self, settings: RoutingSpec, picked: list[str], loads: Mapping[str, int],
                 key: int) -> None:  # fmt: skip
        strategy = settings.strategy
        room = capacity(loads.values(), settings.load_bound)
        LOAD_RATIO.labels(strategy).observe((loads[picked[0]] + 1) / room)
        spilled = strategy == "prefix" and picked[0] != ring_of(picked).walk(key)[0]
        PICKS.labels(strategy, "spilled" if spilled else "first").inc()

    def poll_targets(self) -> list[Route]:
        """The replicas whose load is worth asking for: those of deployments in use."""
        now = self.clock()
        targets: list[Route] = []
        for deployment, used in list(self._active.items()):
            if now - used > ACTIVE_SECONDS:
                del self._active[deployment]
                continue
            namespace, name = deployment.split("/", 1)
            targets += self.dialable(namespace, name).values()
        self.board.keep_only({route.url for route in targets})
        return targets

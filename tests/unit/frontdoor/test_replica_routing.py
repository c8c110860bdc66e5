"""The front door's real application picking replicas itself: each gateway dialed at its pod's
address and verified as the deployment's Service (the certificate names the Service, never a
pod), a replica that refuses the connection skipped with no error to the client, a replica
presenting another certificate refused and never passed over, and the gateways' own load
steering least-load routing.

The gateways are small aiohttp apps on 127.0.0.1 standing in for the pods (the endpoints the
router is given are what an EndpointSlice of theirs would say)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web

from paitient_api.replicas.endpoints import SliceEndpoints, parse_slice
from paitient_api.replicas.metrics import FALLBACKS
from paitient_api.replicas.poller import LoadPoller
from paitient_api.replicas.router import ReplicaRouter
from paitient_api.routing import GatewayRoute
from paitient_common.tls import client_context
from paitient_common.wake import WAKE_ANNOTATION
from paitient_operator.certificates import x509
from tests.unit.frontdoor.support import GATEWAY_CA, NOW, InMemoryCluster, call, front_door, serve

SERVICE = "md-1.tenant-acme.svc"
SERVICE_CERT = x509.issue(GATEWAY_CA, [SERVICE], timedelta(hours=12), NOW)
OTHER_CERT = x509.issue(GATEWAY_CA, ["other.tenant-acme.svc"], timedelta(hours=12), NOW)


def gateway(name: str, hits: list[str], in_flight: int = 0) -> web.Application:
    async def complete(request: web.Request) -> web.Response:
        await request.read()
        hits.append(name)
        return web.json_response({"id": "cmpl-1", "choices": [{"text": "ok", "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1}})  # fmt: skip

    async def load(_: web.Request) -> web.Response:
        return web.json_response({"inFlight": in_flight, "running": 0, "waiting": 0})

    app = web.Application()
    app.router.add_post("/v1/completions", complete)
    app.router.add_get("/healthz/load", load)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cluster(strategy: str) -> InMemoryCluster:
    c = InMemoryCluster()
    c.add("tenant-acme", "md-1", model="org/m")
    c.objects[("tenant-acme", "md-1")]["spec"]["routing"] = {"strategy": strategy}
    return c


def slices_for(ports: dict[str, int]) -> list[SliceEndpoints | None]:
    """What the EndpointSlices of md-1 say with these pods Ready on these ports."""
    endpoints = [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}, "targetRef":
                  {"kind": "Pod", "name": pod}, "port": port} for pod, port in ports.items()]  # fmt: skip
    # One slice per pod: an EndpointSlice has one port list, and each stand-in has its own port.
    return [
        parse_slice({"metadata": {"namespace": "tenant-acme", "labels":
                                  {"kubernetes.io/service-name": "md-1"}},
                     "ports": [{"port": e.pop("port"), "protocol": "TCP"}], "endpoints": [e]})
        for e in endpoints
    ]  # fmt: skip


def router_for(ports: dict[str, int]) -> ReplicaRouter:
    router = ReplicaRouter(GatewayRoute())  # in-cluster: https://<pod address>, the Service's name
    router.update(slices_for(ports))
    return router


@contextlib.asynccontextmanager
async def gateways(*apps: tuple[web.Application, x509.KeyPair]) -> AsyncIterator[list[int]]:
    async with contextlib.AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serve(app, tls=True, certificate=cert))
                for app, cert in apps]  # fmt: skip
        yield [int(url.rsplit(":", 1)[1]) for url in urls]


def generate(prompt: str) -> dict[str, Any]:
    return {"deployment_id": "md-1", "prompt": prompt, "max_tokens": 1}


def refused_so_far() -> float:
    return FALLBACKS.labels("refused")._value.get()


def to_service_so_far() -> float:
    return FALLBACKS.labels("service")._value.get()


def test_a_replica_that_refuses_connections_is_skipped_without_an_error() -> None:
    hits: list[str] = []

    async def main() -> list[int]:
        apps = [(gateway("m-1", hits), SERVICE_CERT), (gateway("m-2", hits), SERVICE_CERT)]
        async with gateways(*apps) as (one, two):
            router = router_for({"m-0": free_port(), "m-1": one, "m-2": two})
            async with front_door(cluster("round-robin"), replicas=router) as (url, keys):
                statuses = [(await call("POST", f"{url}/v1/generate", generate(f"p{i}"),
                                        keys.headers()))[0] for i in range(9)]  # fmt: skip
            # Every request's lease given back: nothing counted in flight any more.
            assert {load.local for load in router.board.replicas.values()} == {0}
            return statuses

    before = refused_so_far()
    assert asyncio.run(main()) == [200] * 9
    # m-0 came first every third turn, refused, and m-1 after it took the request.
    assert Counter(hits) == {"m-1": 6, "m-2": 3}
    assert refused_so_far() - before == 3


def test_a_replica_with_another_services_certificate_is_refused_not_passed_over() -> None:
    hits: list[str] = []

    async def main() -> tuple[int, Any]:
        apps = [(gateway("m-0", hits), OTHER_CERT), (gateway("m-1", hits), SERVICE_CERT)]
        async with gateways(*apps) as (zero, one):
            router = router_for({"m-0": zero, "m-1": one})
            async with front_door(cluster("round-robin"), replicas=router) as (url, keys):
                status, _, body = await call("POST", f"{url}/v1/generate", generate("p"),
                                             keys.headers())  # fmt: skip
        return status, body

    status, body = asyncio.run(main())
    assert status == 502 and "certificate the front door does not trust" in body["error"]["message"]
    assert hits == []  # a TLS failure is final: the request went nowhere


def test_least_load_follows_the_load_the_gateways_report() -> None:
    hits: list[str] = []

    async def main() -> None:
        apps = [(gateway("busy", hits, in_flight=40), SERVICE_CERT),
                (gateway("idle", hits, in_flight=0), SERVICE_CERT)]  # fmt: skip
        async with gateways(*apps) as (busy, idle):
            router = router_for({"busy": busy, "idle": idle})
            async with (
                front_door(cluster("least-load"), replicas=router) as (url, keys),
                aiohttp.ClientSession() as http,
            ):
                await call("POST", f"{url}/v1/generate", generate("wake"), keys.headers())
                hits.clear()  # the first request: no report yet, both equal
                poller = LoadPoller(
                    router, lambda: http, lambda: client_context(GATEWAY_CA.cert_pem)
                )
                await poller.poll_once()  # what the poll task does a few times a second
                for i in range(10):
                    await call("POST", f"{url}/v1/generate", generate(f"q{i}"), keys.headers())

    asyncio.run(main())
    assert hits == ["idle"] * 10


def test_a_deployment_at_zero_is_held_woken_and_then_its_new_replica_picked() -> None:
    """No Ready endpoint while at zero: the request is held, the deployment woken, and once the
    new pod's EndpointSlice reaches the watch (a moment after the status says Ready) the picker
    dials it; the Service (a name that resolves nowhere here) is never used."""
    hits: list[str] = []
    at_zero = cluster("prefix")
    md = at_zero.objects[("tenant-acme", "md-1")]
    md["spec"]["autoscaling"] = {"minReplicas": 0, "maxReplicas": 2}
    md["status"] = {"phase": "ScaledToZero", "readyReplicas": 0}

    async def operator_and_endpoint_controller(router: ReplicaRouter, port: int) -> None:
        while WAKE_ANNOTATION not in md["metadata"].get("annotations", {}):
            await asyncio.sleep(0.01)
        md["status"] = {"phase": "Ready", "readyReplicas": 1}
        await asyncio.sleep(0.1)  # the slice trails the status
        router.update(slices_for({"m-new": port}))

    async def main() -> tuple[int, Any]:
        async with gateways((gateway("m-new", hits), SERVICE_CERT)) as (port,):
            router = ReplicaRouter(GatewayRoute())
            assert router.dialable("tenant-acme", "md-1") == {}
            async with front_door(at_zero, replicas=router) as (url, keys):
                waking = asyncio.ensure_future(operator_and_endpoint_controller(router, port))
                status, _, body = await call("POST", f"{url}/v1/generate", generate("p"),
                                             keys.headers())  # fmt: skip
                await waking
        return status, body

    before = to_service_so_far()
    status, body = asyncio.run(main())
    assert status == 200, body
    assert hits == ["m-new"]
    assert to_service_so_far() == before
    assert len(at_zero.patches) == 1  # one wake

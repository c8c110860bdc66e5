"""Requests for a deployment at zero replicas are held by the front door (``paitient_api.hold``):
one wake request for any number of callers, every caller served once a replica is Ready (the
/v1 generate route and the OpenAI routes, streams included), a bounded hold that ends in 503
with ``Retry-After`` in the one error shape, and no hold for a deployment that cannot wake.

The operator is played by a task that answers the wake annotation by reporting a ready replica
a moment later; the gateway is the vLLM stand-in over TLS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from paitient_common.wake import WAKE_ANNOTATION
from tests.standins.vllm_standin import create_app as standin_app
from tests.unit.frontdoor.support import InMemoryCluster, call, front_door, serve

SERVED = "standin-model"
NS = "tenant-acme"


def at_zero(min_replicas: int = 0, autoscaling: bool = True) -> InMemoryCluster:
    cluster = InMemoryCluster()
    cluster.add(NS, "md-1", phase="ScaledToZero", model=SERVED)
    md = cluster.objects[(NS, "md-1")]
    if autoscaling:
        md["spec"]["autoscaling"] = {"minReplicas": min_replicas, "maxReplicas": 2}
    md["status"]["readyReplicas"] = 0
    return cluster


async def operator(cluster: InMemoryCluster, start_seconds: float) -> None:
    """What the operator and the kubelet do, seen from the API: a wake token, then a replica
    Ready ``start_seconds`` later."""
    md = cluster.objects[(NS, "md-1")]
    while WAKE_ANNOTATION not in md["metadata"].get("annotations", {}):
        await asyncio.sleep(0.01)
    md["status"] = {"phase": "Progressing", "readyReplicas": 0}
    await asyncio.sleep(start_seconds)
    md["status"] = {"phase": "Ready", "readyReplicas": 1}


Caller = Callable[[str, dict[str, str]], Awaitable[tuple[int, Any]]]


def generate(stream: bool) -> Caller:
    async def go(url: str, headers: dict[str, str]) -> tuple[int, Any]:
        body = {"deployment_id": "md-1", "prompt": "a b", "max_tokens": 3, "stream": stream}
        status, _, answer = await call("POST", f"{url}/v1/generate", body, headers)
        return status, answer

    return go


def chat(stream: bool) -> Caller:
    async def go(url: str, headers: dict[str, str]) -> tuple[int, Any]:
        body: dict[str, Any] = {
            "model": SERVED,
            "messages": [{"role": "user", "content": "a b"}],
            "max_tokens": 3,
            "stream": stream,
        }
        status, _, answer = await call("POST", f"{url}/v1/chat/completions", body, headers)
        return status, answer

    return go


def completed(status: int, answer: Any, stream: bool) -> bool:
    if status != 200:
        return False
    if stream:
        return isinstance(answer, str) and answer.rstrip().endswith("data: [DONE]")
    return "usage" in answer


def test_concurrent_requests_at_zero_share_one_wake_and_are_all_served() -> None:
    cluster = at_zero()
    callers = [(c, s) for c in (generate, chat) for s in (False, True)] * 3

    async def scenario() -> list[tuple[int, Any]]:
        async with (
            serve(standin_app(SERVED), tls=True) as gateway,
            front_door(cluster, gateway) as (url, keys),
        ):
            starting = asyncio.ensure_future(operator(cluster, start_seconds=0.3))
            answers = await asyncio.gather(*(c(s)(url, keys.headers()) for c, s in callers))
            await starting
            return answers

    answers = asyncio.run(scenario())
    for (_, stream), (status, answer) in zip(callers, answers, strict=True):
        assert completed(status, answer, stream), (status, answer)
    assert len(cluster.patches) == 1  # one wake for all twelve
    assert list(cluster.patches[0][2]["metadata"]["annotations"]) == [WAKE_ANNOTATION]


def test_past_the_hold_the_caller_gets_503_with_retry_after() -> None:
    cluster = at_zero()

    async def scenario() -> tuple[int, Any, Any]:
        async with front_door(cluster, "https://127.0.0.1:9", hold_seconds=0.2) as (url, keys):
            body = {"deployment_id": "md-1", "prompt": "a", "max_tokens": 1}
            return await call("POST", f"{url}/v1/generate", body, keys.headers())

    status, headers, answer = asyncio.run(scenario())
    assert status == 503 and headers["Retry-After"] == "10"
    assert answer["error"]["type"] == "service_error"
    assert answer["error"]["message"] == (
        "deployment md-1 is starting from zero replicas and had no ready replica within 0 s; "
        "try again shortly"
    )
    assert set(answer["error"]) == {"type", "message", "request_id"}
    assert len(cluster.patches) == 1


def test_a_deployment_that_cannot_wake_is_not_held() -> None:
    """replicas: 0 set by hand, or an autoscaler whose minimum is above zero: 503 at once."""
    for cluster in (at_zero(autoscaling=False), at_zero(min_replicas=1)):

        async def scenario(c: InMemoryCluster = cluster) -> tuple[int, Any, Any]:
            async with front_door(c, "https://127.0.0.1:9", hold_seconds=30) as (url, keys):
                body = {"deployment_id": "md-1", "prompt": "a", "max_tokens": 1}
                return await call("POST", f"{url}/v1/generate", body, keys.headers())

        status, _, answer = asyncio.run(scenario())
        assert status == 503
        assert answer["error"]["message"] == "deployment md-1 is not ready (status: scaled-to-zero)"
        assert cluster.patches == []


def test_a_caller_that_leaves_while_held_is_not_forwarded() -> None:
    cluster = at_zero()
    forwarded: list[str] = []
    standin = standin_app(SERVED)

    @aiohttp.web.middleware
    async def count(request: aiohttp.web.Request, handler: Any) -> Any:
        forwarded.append(request.path)
        return await handler(request)

    standin.middlewares.append(count)

    async def scenario() -> tuple[int, Any]:
        async with (
            serve(standin, tls=True) as gateway,
            front_door(cluster, gateway) as (url, keys),
        ):
            body = {"deployment_id": "md-1", "prompt": "a", "max_tokens": 1}
            async with aiohttp.ClientSession() as session:
                request = session.post(f"{url}/v1/generate", json=body, headers=keys.headers())
                leaving = asyncio.ensure_future(request.__aenter__())
                while not cluster.patches:  # held now
                    await asyncio.sleep(0.01)
                leaving.cancel()  # the client gives up and closes its connection
            await operator(cluster, start_seconds=0.05)
            # A caller that stayed is served: the wait ended for everyone.
            return await generate(False)(url, keys.headers())

    status, answer = asyncio.run(scenario())
    assert completed(status, answer, stream=False)
    assert forwarded == ["/v1/completions"]  # the second caller's only
    assert json.dumps(answer)  # a real answer

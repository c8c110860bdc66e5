"""The way from a handler to a deployment's gateway, shared by ``generate`` and the OpenAI routes:
only a Ready deployment, at the replica the picker chooses (``replicas``) or its Service, over
verified TLS (``gateway_client``), with the caller's own credentials (the gateway authenticates,
limits and meters again), and the gateway's refusals passed on as our errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web

from paitient_api.door import FrontDoor
from paitient_api.gateway_client import Lease, finished, post_to_gateway, untracked
from paitient_api.mapping import api_status
from paitient_api.replicas.metrics import FALLBACKS
from paitient_api.request_context import caller
from paitient_api.routing import Route
from paitient_common.errors import ServiceError, error_from_body
from paitient_common.kubeapi import Obj
from paitient_common.wake import holdable, ready_replicas

RATE_LIMIT_PREFIX = "x-ratelimit-"


def serving(md: Obj) -> bool:
    """Whether a deployment takes requests now: a replica is ready and it is not refused (a
    deployment scaling up, rolling out or short of a replica still serves with what it has)."""
    status = md.get("status") or {}
    if status.get("phase") == "Ready":
        return True
    return status.get("phase") != "Failed" and ready_replicas(md) > 0


def reachable(md: Obj) -> bool:
    """Whether a request for it is answered: now, or once it has started from zero."""
    return serving(md) or holdable(md)


def require_serving(md: Obj) -> None:
    """503 (worth a retry) for a deployment that does not take requests yet."""
    if not serving(md):
        raise ServiceError(
            f"deployment {md['metadata']['name']} is not ready (status: {api_status(md)})",
            status=503,
        )


async def open_gateway(
    request: web.Request,
    md: Obj,
    path: str,
    *,
    json: Any = None,
    data: bytes | None = None,
    body: Any = None,
) -> aiohttp.ClientResponse:
    """POST to ``path`` on the deployment's gateway; a 2xx response, unread, or the error. A
    deployment at zero replicas is woken and waited for first (``hold``), then a replica is
    picked. ``body`` is ``data`` as read (what the replica picker hashes); ``json`` is its own."""
    door: FrontDoor = request.app["door"]
    held = holdable(md)
    md = await door.holds.until_serving(md)
    if request.transport is None or request.transport.is_closing():
        # The caller left while the deployment started: nobody would read the answer.
        raise ServiceError("the caller left while the deployment started", status=503)
    require_serving(md)
    assert door.http is not None
    replicas: list[Route] = []
    start: Callable[[Route], Lease] = untracked
    if door.replicas is not None:
        if held:  # the replica that woke is picked, not only reached through the Service
            meta = md["metadata"]
            await door.replicas.until_known(meta["namespace"], meta["name"])
        routed = json if json is not None else body
        replicas = door.replicas.choose(md, caller(request).name, routed)
        if replicas:
            start = door.replicas.start
        else:
            FALLBACKS.labels("service").inc()
    headers = {
        "Authorization": request.headers["Authorization"],
        "X-Client-ID": request.headers["X-Client-ID"],
        "x-request-id": request["request_id"],
    }
    if data is not None:
        headers["Content-Type"] = "application/json"
    upstream = await post_to_gateway(
        door.http, door.route, door.trust, md, path, headers, json=json, data=data,
        replicas=replicas, start=start,
    )  # fmt: skip
    if upstream.status < 400:
        return upstream
    finished(upstream)
    async with upstream:
        try:
            err_body = await upstream.json(content_type=None)
        except (ValueError, aiohttp.ClientError, TimeoutError):
            err_body = None
    raise error_from_body(upstream.status, err_body, upstream.headers)


def close_upstream(upstream: aiohttp.ClientResponse) -> None:
    """Back to the pool when read to the end; otherwise drop the connection, which tells the
    gateway the caller left (it then bills what was generated and stops the model)."""
    finished(upstream)
    if upstream.content.at_eof():
        upstream.release()
    else:
        upstream.close()


def stream_response(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """An SSE response carrying our request id and the gateway's rate-limit headers."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "x-request-id": request["request_id"],
        }
    )
    response.headers.update(rate_limit_headers(upstream))
    return response


def rate_limit_headers(upstream: aiohttp.ClientResponse) -> dict[str, str]:
    return {k: v for k, v in upstream.headers.items() if k.lower().startswith(RATE_LIMIT_PREFIX)}


async def sse_data(stream: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event line."""
    async for raw in stream:
        line = raw.decode("utf-8").strip()
        if line.startswith("data:"):
            yield line[5:].strip()

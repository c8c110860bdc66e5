"""The way from a handler to a deployment's gateway, shared by ``generate`` and the OpenAI routes:
only a Ready deployment, at its route, with the caller's own credentials (the gateway
authenticates, limits and meters again), and the gateway's refusals passed on as our errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from paitient_api.door import FrontDoor
from paitient_common.errors import ServiceError, error_from_body
from paitient_common.kubeapi import Obj

RATE_LIMIT_PREFIX = "x-ratelimit-"


def serving(md: Obj) -> bool:
    """Whether a deployment takes requests now."""
    return (md.get("status") or {}).get("phase") == "Ready"


def require_serving(md: Obj) -> None:
    """503 (worth a retry) for a deployment that does not take requests yet."""
    if not serving(md):
        phase = (md.get("status") or {}).get("phase")
        raise ServiceError(
            f"deployment {md['metadata']['name']} is not ready "
            f"(status: {str(phase or 'pending').lower()})",
            status=503,
        )


async def open_gateway(
    request: web.Request, md: Obj, path: str, *, json: Any = None, data: bytes | None = None
) -> aiohttp.ClientResponse:
    """POST to ``path`` on the deployment's gateway; a 2xx response, unread, or the error."""
    require_serving(md)
    deployment_id = md["metadata"]["name"]
    door: FrontDoor = request.app["door"]
    assert door.http is not None
    base = door.route.url(deployment_id, md["metadata"]["namespace"])
    if base is None:
        raise ServiceError(f"deployment {deployment_id} has no gateway yet", status=503)
    headers = {
        "Authorization": request.headers["Authorization"],
        "X-Client-ID": request.headers["X-Client-ID"],
        "x-request-id": request["request_id"],
    }
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        upstream = await door.http.post(base + path, json=json, data=data, headers=headers)
    except (aiohttp.ClientError, TimeoutError):
        raise ServiceError("the deployment's gateway is unreachable", status=502) from None
    if upstream.status < 400:
        return upstream
    async with upstream:
        try:
            err_body = await upstream.json(content_type=None)
        except (ValueError, aiohttp.ClientError, TimeoutError):
            err_body = None
    raise error_from_body(upstream.status, err_body, upstream.headers)


def close_upstream(upstream: aiohttp.ClientResponse) -> None:
    """Back to the pool when read to the end; otherwise drop the connection, which tells the
    gateway the caller left (it then bills what was generated and stops the model)."""
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

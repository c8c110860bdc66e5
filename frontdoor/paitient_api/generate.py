"""Handlers of /v1/generate: forwarded to the deployment's gateway, streams relayed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from paitient_api import translate
from paitient_api.door import FrontDoor
from paitient_api.gateway_client import post_to_gateway
from paitient_api.request_context import answer, get_model_deployment, read_body
from paitient_api.schemas import Generate, GenerateForDeployment
from paitient_common.errors import ServiceError, error_body, error_from_body


async def generate(request: web.Request) -> web.StreamResponse:
    in_path = request.match_info.get("id")
    body: GenerateForDeployment = await read_body(
        request, GenerateForDeployment if in_path else Generate
    )
    deployment_id = in_path or body.deployment_id  # type: ignore[attr-defined]
    md = await get_model_deployment(request, deployment_id)
    phase = (md.get("status") or {}).get("phase")
    if phase != "Ready":
        raise ServiceError(
            f"deployment {deployment_id} is not ready (status: {str(phase or 'pending').lower()})",
            status=503,
        )
    door: FrontDoor = request.app["door"]
    assert door.http is not None
    served = (md.get("spec", {}).get("model") or {}).get("name") or md["metadata"]["name"]
    headers = {
        "Authorization": request.headers["Authorization"],
        "X-Client-ID": request.headers["X-Client-ID"],
        "x-request-id": request["request_id"],
    }
    payload = translate.completion_request(body, served)
    upstream = await post_to_gateway(
        door.http, door.route, door.trust, md, "/v1/completions", payload, headers
    )
    async with upstream:
        if upstream.status >= 400:
            try:
                err_body = await upstream.json(content_type=None)
            except (ValueError, aiohttp.ClientError):
                err_body = None
            raise error_from_body(upstream.status, err_body)
        if not body.stream:
            return answer(
                translate.generation(await upstream.json(content_type=None), deployment_id)
            )
        return await _relay_stream(request, upstream)


async def _relay_stream(
    request: web.Request, upstream: aiohttp.ClientResponse
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "x-request-id": request["request_id"],
        }
    )
    for name, value in upstream.headers.items():
        if name.lower().startswith("x-ratelimit-"):
            response.headers[name] = value
    await response.prepare(request)
    final: dict[str, Any] = {}
    try:
        async for data in _sse_data(upstream.content):
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                await response.write(translate.sse({"error": chunk["error"]}))
                break
            for event in translate.stream_event(chunk):
                if "text" in event:
                    await response.write(translate.sse(event))
                else:  # finish_reason and usage travel together in the last event
                    final.update(event)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        err = ServiceError("the stream from the deployment was interrupted", status=502)
        await response.write(translate.sse(error_body(err, request["request_id"])))
    if final:
        await response.write(translate.sse(final))
    await response.write(translate.sse("[DONE]"))
    await response.write_eof()
    return response


async def _sse_data(stream: aiohttp.StreamReader) -> AsyncIterator[str]:
    async for raw in stream:
        line = raw.decode("utf-8").strip()
        if line.startswith("data:"):
            yield line[5:].strip()

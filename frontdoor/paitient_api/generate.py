"""Handlers of /v1/generate: forwarded to the deployment's gateway, streams relayed."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from paitient_api import translate
from paitient_api.request_context import answer, get_model_deployment, read_body
from paitient_api.schemas import Generate, GenerateForDeployment
from paitient_api.upstream import close_upstream, open_gateway, sse_data, stream_response
from paitient_common.errors import ServiceError, error_body


async def generate(request: web.Request) -> web.StreamResponse:
    in_path = request.match_info.get("id")
    body: GenerateForDeployment = await read_body(
        request, GenerateForDeployment if in_path else Generate
    )
    deployment_id = in_path or body.deployment_id  # type: ignore[attr-defined]
    md = await get_model_deployment(request, deployment_id)
    served = (md.get("spec", {}).get("model") or {}).get("name") or md["metadata"]["name"]
    payload = translate.completion_request(body, served)
    upstream = await open_gateway(request, md, "/v1/completions", json=payload)
    try:
        if not body.stream:
            return answer(
                translate.generation(await upstream.json(content_type=None), deployment_id)
            )
        return await _relay_stream(request, upstream)
    finally:
        close_upstream(upstream)


async def _relay_stream(
    request: web.Request, upstream: aiohttp.ClientResponse
) -> web.StreamResponse:
    response = stream_response(request, upstream)
    await response.prepare(request)
    final: dict[str, Any] = {}
    try:
        async for data in sse_data(upstream.content):
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

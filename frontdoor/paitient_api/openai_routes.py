"""Handlers of the OpenAI-compatible routes: ``POST /v1/chat/completions``,
``POST /v1/completions``, ``GET /v1/models`` and ``GET /v1/models/{model}``.

Authentication, the audit line and the error shape come from the middleware, as for every /v1
route; the body goes to the gateway as sent, and the gateway limits and meters it (its usage
chunk included: it always asks the model for one and hides it when the client did not), so
there is one implementation of each.
"""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web

from paitient_api import translate
from paitient_api.door import FrontDoor
from paitient_api.openai_wire import (
    CHAT_COMPLETIONS,
    COMPLETIONS,
    model_card,
    model_list,
    requested_model,
    resolve_model,
)
from paitient_api.request_context import MD, caller, kube_error, read_json
from paitient_api.upstream import (
    close_upstream,
    open_gateway,
    rate_limit_headers,
    reachable,
    require_serving,
    sse_data,
    stream_response,
)
from paitient_common.errors import ServiceError, error_from_body, openai_error_body
from paitient_common.kubeapi import KubeError, Obj

_ERROR_EVENT = '{"error"'


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, CHAT_COMPLETIONS)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, COMPLETIONS)


async def list_models(request: web.Request) -> web.Response:
    """The caller's deployments that answer requests: now, or once started from zero."""
    return web.json_response(model_list(md for md in await _deployments(request) if reachable(md)))


async def get_model(request: web.Request) -> web.Response:
    md = resolve_model(await _deployments(request), request.match_info["model"])
    if not reachable(md):
        require_serving(md)
    return web.json_response(model_card(md))


async def _deployments(request: web.Request) -> list[Obj]:
    door: FrontDoor = request.app["door"]
    try:
        items: list[Obj] = await door.k8s(door.kube.list, *MD, namespace=caller(request).namespace)
    except KubeError as exc:
        raise kube_error(exc) from None
    return items


async def _complete(request: web.Request, path: str) -> web.StreamResponse:
    raw, body = await read_json(request)
    md = resolve_model(await _deployments(request), requested_model(body))
    upstream = await open_gateway(request, md, path, data=raw, body=body)
    try:
        if upstream.content_type == "text/event-stream":
            return await _relay(request, upstream)
        try:
            answer = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            raise ServiceError("the deployment's gateway failed to answer", status=502) from None
        return web.Response(
            body=answer, content_type="application/json", headers=rate_limit_headers(upstream)
        )
    finally:
        close_upstream(upstream)


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """The gateway's events one by one as they come; its error event in OpenAI's shape."""
    response = stream_response(request, upstream)
    await response.prepare(request)
    request_id = request["request_id"]
    try:
        async for data in sse_data(upstream.content):
            if data.startswith(_ERROR_EVENT):
                err = error_from_body(502, json.loads(data))
                await response.write(translate.sse(openai_error_body(err, request_id)))
                break
            await response.write(translate.sse(data))
            if data == "[DONE]":
                break
    except ConnectionResetError:
        return response  # the caller left; dropping the upstream lets the gateway bill and stop
    except (aiohttp.ClientError, TimeoutError, ValueError):
        err = ServiceError("the stream from the deployment was interrupted", status=502)
        await response.write(translate.sse(openai_error_body(err, request_id)))
    await response.write_eof()
    return response

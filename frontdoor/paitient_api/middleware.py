"""The middleware every request passes: request ids, one error shape (OpenAI's on its routes)
and the audit line; authentication; Idempotency-Key replay."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from paitient_api.door import FrontDoor
from paitient_api.idempotency import MAX_KEY_LENGTH, Answer, IdempotencyRecords
from paitient_api.openai_wire import is_openai_path
from paitient_common.apikeys import AuthFailure
from paitient_common.errors import (
    SUSPENDED_MESSAGE,
    ApiError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RequestValidationError,
    ServiceError,
    error_body,
    openai_error_body,
)
from paitient_common.logs import log_unexpected

log = logging.getLogger("paitient.api")
audit = logging.getLogger("paitient.api.audit")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_of(request: web.Request, err: BaseException) -> Mapping[str, object]:
    """The error body in the shape of the route: ours, or OpenAI's on the OpenAI routes."""
    if is_openai_path(request.path):
        return openai_error_body(err, request["request_id"])
    return error_body(err, request["request_id"])


@web.middleware
async def errors_and_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = f"req_{uuid.uuid4().hex}"
    request["request_id"] = request_id
    started = time.monotonic()
    try:
        response = await handler(request)
    except ApiError as err:
        response = web.json_response(body_of(request, err), status=err.status, headers=err.headers)
    except web.HTTPException as exc:  # aiohttp's own (404 route, 405 method, 413 size)
        mapped = _from_http(exc)
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        response = web.json_response(body_of(request, mapped), status=mapped.status, headers=allow)
    except Exception as exc:
        # Never log.exception: a traceback prints the exception's message, which may quote
        # the prompt or the completion (a parse error echoing the value it choked on).
        log_unexpected(log, exc, f"{request.method} {_route(request)}")
        response = web.json_response(body_of(request, ServiceError()), status=500)
    if not response.prepared:
        response.headers["x-request-id"] = request_id
    tenant = request.get("tenant")
    audit.info(
        json.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "request_id": request_id,
                "tenant": tenant.name if tenant else None,
                "client_id": tenant.client_id if tenant else None,
                "key_id": request.get("key_id"),
                "route": _route(request),
                "method": request.method,
                "status": response.status,
                "latency_ms": round((time.monotonic() - started) * 1000, 2),
            }
        )
    )
    return response


def _route(request: web.Request) -> str | None:
    """The matched route's template (``/v1/deployments/{id}``), never the caller's own path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource else None


def _from_http(exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return NotFoundError("no such route")
    if exc.status == 405:
        return RequestValidationError("method not allowed on this route", status=405)
    if exc.status == 413:
        return RequestValidationError("request body too large", status=413)
    return RequestValidationError(exc.reason or "bad request", status=400)


def _records(request: web.Request) -> IdempotencyRecords:
    """The shared records for the deployment routes, this process's for the rest (their
    answers can carry completion text, which never rests in the store)."""
    shared: IdempotencyRecords | None = request.app.get("idempotency_shared")
    if shared is not None and is_control_route(request.path):
        return shared
    local: IdempotencyRecords = request.app["idempotency"]
    return local


def is_control_route(path: str) -> bool:
    return path.startswith("/v1/deployments") and not path.endswith("/generate")


@web.middleware
async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Replay the first answer to a retried write that carries the same Idempotency-Key."""
    key = request.headers.get("Idempotency-Key")
    tenant = request.get("tenant")
    if request.method not in ("POST", "PATCH", "DELETE") or not key or tenant is None:
        return await handler(request)
    if len(key) > MAX_KEY_LENGTH:
        raise RequestValidationError("Idempotency-Key is longer than 128 characters", status=400)
    records = _records(request)
    claim = await records.begin(tenant.name, f"{request.method} {request.path} {key}")
    if claim.answer is not None:
        answer = claim.answer
        return web.Response(
            status=answer.status, body=answer.body, content_type=answer.content_type
        )
    if not claim.owner:
        return await handler(request)  # the first attempt left nothing to replay
    owner = claim.records or records
    try:
        response = await handler(request)
    except ApiError as err:
        if err.status < 500:
            body = json.dumps(body_of(request, err)).encode()
            await owner.complete(claim, Answer(err.status, body, "application/json"))
        else:
            await owner.abandon(claim)
        raise
    except BaseException:
        await asyncio.shield(owner.abandon(claim))
        raise
    if (
        isinstance(response, web.Response)
        and response.status < 500
        and isinstance(response.body, bytes)
    ):
        await owner.complete(claim, Answer(response.status, response.body, response.content_type))
    else:
        await owner.abandon(claim)
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/") or request.path == "/v1/openapi.json":
        return await handler(request)
    door: FrontDoor = request.app["door"]
    headers = request.headers
    if len(headers.getall("Authorization", [])) != 1 or len(headers.getall("X-Client-ID", [])) != 1:
        raise AuthenticationError()
    result = await door.callers.verify(headers.get("Authorization"), headers.get("X-Client-ID"))
    if isinstance(result, AuthFailure):
        raise AuthenticationError()
    if result.suspended:
        raise PermissionDeniedError(SUSPENDED_MESSAGE)
    request["tenant"] = result.tenant
    request["key_id"] = result.key_id
    return await handler(request)

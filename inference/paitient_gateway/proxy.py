"""The /v1 handlers: authenticate, admit, forward to vLLM, meter, answer.

Order for every completion request: auth (401/403) → body (413/400) → admission: rate limits
and the usage-limit reservation (429, ``admission.py``) → upstream. Usage is written to the
ledger, then settled (in the shared store, when there is one), before the client gets the bytes
that carry it (the end of a JSON answer, the usage chunk or ``[DONE]`` of a stream), and a
stream the client abandons is billed with the last usage vLLM reported.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from paitient_common.apikeys import AuthFailure, VerifiedIdentity
from paitient_common.errors import (
    ApiError,
    AuthenticationError,
    PermissionDeniedError,
    RequestValidationError,
    ServiceError,
    error_body,
)
from paitient_common.tiers import format_time
from paitient_gateway.admission import Request, Ticket
from paitient_gateway.audit import AuditRecord
from paitient_gateway.errors import (
    PayloadTooLargeError,
    unavailable,
    upstream_failed,
    upstream_timeout,
)
from paitient_gateway.ledger import UsageRecord
from paitient_gateway.metrics import operation_name
from paitient_gateway.state import Gateway
from paitient_gateway.upstream import refusal_message
from paitient_gateway.usage import (
    PreparedRequest,
    StreamMeter,
    Usage,
    error_event,
    prepare_request,
    usage_from,
)


@dataclass
class Billing:
    """What one admitted request holds until it settles."""

    identity: VerifiedIdentity
    ticket: Ticket
    prepared: PreparedRequest
    settled: bool = False


def _audit(request: web.Request) -> AuditRecord:
    record: AuditRecord = request["audit"]
    return record


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError()
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)


async def authenticate(gw: Gateway, request: web.Request) -> VerifiedIdentity:
    """401 for every key failure (one message), 403 for suspended or foreign tenants."""
    if not gw.directory.loaded:
        raise unavailable("keys are not loaded yet")
    result = await gw.directory.verify(
        request.headers.get("Authorization"), request.headers.get("X-Client-ID")
    )
    if isinstance(result, AuthFailure):
        raise AuthenticationError(result.message)
    audit = _audit(request)
    audit.tenant, audit.client_id, audit.key_id = (
        result.tenant.name,
        result.tenant.client_id,
        result.key_id,
    )
    if result.suspended:
        raise PermissionDeniedError("the tenant is suspended")
    namespace = result.tenant.namespace
    if namespace != gw.config.namespace and namespace not in gw.directory.allowed_namespaces:
        raise PermissionDeniedError("this deployment does not serve your tenant")
    return result


async def admit(
    gw: Gateway, request: web.Request, identity: VerifiedIdentity, prepared: PreparedRequest
) -> Billing:
    tenant = identity.tenant
    ticket = await gw.limits.admit(
        Request(
            request["request_id"],
            tenant,
            gw.directory.tier(tenant.tier),
            gw.directory.usage.get(tenant.name),
            prepared.reserve,
        )
    )
    return Billing(identity, ticket, prepared)


def _bill(gw: Gateway, request: web.Request, billing: Billing, usage: Usage | None) -> bool:
    """Ledger first, then counters and metrics; ``None`` bills nothing. False when the request
    was billed already."""
    if billing.settled:
        return False
    billing.settled = True
    if usage is not None:
        gw.ledger.append(
            UsageRecord(
                request_id=request["request_id"],
                tenant=billing.identity.tenant.name,
                key_id=billing.identity.key_id,
                period_start=billing.ticket.period_start,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                time=format_time(datetime.now(UTC)),
            )
        )
        gw.observe_usage(request.path, usage)
        audit = _audit(request)
        audit.prompt_tokens, audit.completion_tokens = (
            usage.prompt_tokens,
            usage.completion_tokens,
        )
    return True


async def settle(gw: Gateway, request: web.Request, billing: Billing, usage: Usage | None) -> None:
    """Bill, then settle the limits (in the store: before the client gets the usage's bytes,
    so what a client received is in the store at once)."""
    try:
        billed = _bill(gw, request, billing, usage)
    except BaseException:
        gw.spawn(gw.limits.settle(billing.ticket, 0))
        raise
    if billed:
        await gw.limits.settle(billing.ticket, usage.total if usage else 0)


def settle_soon(gw: Gateway, request: web.Request, billing: Billing, usage: Usage | None) -> None:
    """``settle`` for a request whose task may be cancelled: the ledger now, the limits in a
    task of their own."""
    billed = False
    try:
        billed = _bill(gw, request, billing, usage)
    finally:
        if not billing.ticket.settled:
            gw.spawn(gw.limits.settle(billing.ticket, usage.total if usage and billed else 0))


async def completions(request: web.Request) -> web.StreamResponse:
    gw: Gateway = request.app["gateway"]
    identity = await authenticate(gw, request)
    raw = await read_body(request, gw.config.body_limit)
    prepared = prepare_request(
        request.path,
        raw,
        gw.config.served_model_name,
        gw.config.default_max_tokens,
        await gw.max_model_len(),
        gw.config.max_choices,
        gw.cache_salts.salt(identity.tenant.name),
    )
    billing = await admit(gw, request, identity, prepared)
    request["ratelimit_headers"] = billing.ticket.headers
    try:
        upstream = await gw.open_upstream(request.path, prepared.body)
    except BaseException:
        settle_soon(gw, request, billing, None)
        raise
    try:
        if prepared.stream and upstream.status == 200:
            return await _stream(gw, request, billing, upstream)
        return await _whole(gw, request, billing, upstream)
    finally:
        settle_soon(gw, request, billing, None)  # a no-op once billed
        if upstream.content.at_eof():
            upstream.release()  # back to the pool
        else:
            upstream.close()  # unfinished: dropping the connection makes vLLM abort


def _upstream_status_error(status: int, payload: bytes) -> ApiError:
    """vLLM's refusal of the request as the client's validation error, in vLLM's words (minus
    quoted input); its own failures as a 502 that says nothing of them."""
    if status >= 500 or status in (401, 403, 404):
        return upstream_failed()
    message = refusal_message(payload) or f"the model server refused the request (status {status})"
    return RequestValidationError(message)


async def _whole(
    gw: Gateway, request: web.Request, billing: Billing, upstream: aiohttp.ClientResponse
) -> web.Response:
    try:
        payload = await upstream.read()
    except TimeoutError:
        raise upstream_timeout() from None
    except aiohttp.ClientError:
        raise upstream_failed() from None
    if upstream.status != 200:
        raise _upstream_status_error(upstream.status, payload)
    try:
        usage = usage_from(json.loads(payload))
    except ValueError:
        raise upstream_failed() from None
    if usage is None:  # vLLM always reports usage; bill the estimate rather than nothing
        usage = Usage(billing.prepared.prompt_estimate, 0)
    await settle(gw, request, billing, usage)
    return web.Response(
        body=payload,
        content_type="application/json",
        headers=billing.ticket.headers,
    )


async def _stream(
    gw: Gateway, request: web.Request, billing: Billing, upstream: aiohttp.ClientResponse
) -> web.StreamResponse:
    prepared = billing.prepared
    meter = StreamMeter(prepared.client_include_usage, prepared.client_continuous_usage)
    response = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            **billing.ticket.headers,
        },
    )
    started = request["started"]
    await response.prepare(request)
    try:
        async for data in upstream.content.iter_any():
            out = meter.feed(data)
            if meter.upstream_error:
                raise upstream_failed()
            if meter.final and not billing.settled:
                await settle(gw, request, billing, meter.usage or Usage())
            if not out:
                continue
            if meter.first_content and "ttft" not in request:
                request["ttft"] = time.perf_counter() - started
                gw.metrics.ttft.labels(operation_name(request.path)).observe(request["ttft"])
            await response.write(b"".join(out))
        if not meter.done:
            raise upstream_failed()
    except asyncio.CancelledError:
        settle_soon(gw, request, billing, meter.usage or Usage())
        request["status"] = 499
        raise
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError is one too
        # The client went away: bill what vLLM generated so far; releasing the upstream
        # connection makes vLLM abort the generation.
        await settle(gw, request, billing, meter.usage or Usage())
        _audit(request).error_type = "client_disconnected"
        request["status"] = 499
        return response
    except (ServiceError, TimeoutError, aiohttp.ClientError) as exc:
        err = exc if isinstance(exc, ApiError) else _stream_error(exc)
        await settle(gw, request, billing, meter.usage or Usage())
        request["status"] = err.status
        _audit(request).error_type = err.type
        gw.metrics.rejections.labels(
            "upstream_timeout" if err.status == 504 else "upstream_error"
        ).inc()
        # Headers are gone already: the error travels as the stream's last event.
        await response.write(error_event(error_body(err, request["request_id"])))
    await response.write_eof()
    return response


def _stream_error(exc: BaseException) -> ApiError:
    return upstream_timeout() if isinstance(exc, TimeoutError) else upstream_failed()


async def models(request: web.Request) -> web.Response:
    """Only the served model, described by the gateway (vLLM's entry names local paths)."""
    gw: Gateway = request.app["gateway"]
    await authenticate(gw, request)
    body: dict[str, Any] = {
        "object": "list",
        "data": [
            {
                "id": gw.config.served_model_name,
                "object": "model",
                "created": gw.started,
                "owned_by": "paitient",
            }
        ],
    }
    return web.json_response(body)

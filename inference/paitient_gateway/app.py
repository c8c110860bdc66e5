"""The gateway application: routes and the error/request-id/audit/metrics frame around them.

Only the routes below exist; every other path and method answers 404 ``not_found_error``, so
vLLM's ``/tokenize``, ``/detokenize``, admin and profiling routes are never reachable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from paitient_common.errors import ApiError, NotFoundError, error_body
from paitient_common.gateway_load import LOAD_PATH
from paitient_common.logs import log_unexpected
from paitient_gateway import proxy
from paitient_gateway.audit import AuditRecord, write_audit
from paitient_gateway.errors import (
    REQUEST_ID_HEADER,
    LimitExceeded,
    error_for_status,
    request_id_from,
    unavailable,
)
from paitient_gateway.metrics import CONTENT_TYPE, operation_name
from paitient_gateway.state import Gateway
from paitient_gateway.usage import CHAT_COMPLETIONS, COMPLETIONS

log = logging.getLogger("paitient.gateway")

ROUTES: Final = frozenset({COMPLETIONS, CHAT_COMPLETIONS, "/v1/models"})
_REJECTION_BY_TYPE: Final = {
    "authentication_error": "authentication",
    "permission_error": "permission",
    "validation_error": "invalid_request",
    "not_found_error": "not_found",
    "rate_limit_error": "rate_limit",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- the frame around every request ----------------------------------------------------------------


@web.middleware
async def frame(request: web.Request, handler: Handler) -> web.StreamResponse:
    gw: Gateway = request.app["gateway"]
    request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    request["request_id"] = request_id
    request["started"] = time.perf_counter()
    route = request.path if request.path in ROUTES else "other"
    audited = not request.path.startswith(("/healthz/", "/metrics"))
    request["audit"] = AuditRecord(request_id, route, gw.config.deployment)
    gw.metrics.in_flight.inc()
    completion = route in (COMPLETIONS, CHAT_COMPLETIONS)
    if completion:
        gw.completions_in_flight += 1
    status = 500
    try:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _error_response(gw, request, exc)
        except web.HTTPException as exc:  # aiohttp's own (e.g. a malformed request line)
            response = _error_response(gw, request, error_for_status(exc.status))
        except Exception as exc:
            log_unexpected(log, exc, f"{request.method} {route}")
            response = _error_response(gw, request, ApiError())
        status = request.get("status", response.status)
        return response
    except asyncio.CancelledError:
        status = request.get("status", 499)
        raise
    finally:
        gw.metrics.in_flight.dec()
        if completion:
            gw.completions_in_flight -= 1
        elapsed = time.perf_counter() - request["started"]
        if route != "other" or audited:
            gw.metrics.requests.labels(route, str(status)).inc()
        if completion:
            gw.metrics.duration.labels(operation_name(route)).observe(elapsed)
        if audited:
            record: AuditRecord = request["audit"]
            record.status, record.latency_ms = status, elapsed * 1000
            write_audit(gw.audit, record)


def _error_response(gw: Gateway, request: web.Request, exc: ApiError) -> web.Response:
    reason = _REJECTION_BY_TYPE.get(exc.type)
    if exc.status == 413:
        reason = "body_too_large"
    elif isinstance(exc, LimitExceeded):
        reason = exc.reason
    elif exc.type == "service_error":
        reason = {502: "upstream_error", 503: "not_ready", 504: "upstream_timeout"}.get(exc.status)
    if reason is not None:
        gw.metrics.rejections.labels(reason).inc()
    request["audit"].error_type = exc.type
    headers = {**request.get("ratelimit_headers", {}), **exc.headers}
    return web.json_response(
        error_body(exc, request["request_id"]), status=exc.status, headers=headers
    )


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[REQUEST_ID_HEADER] = request.get("request_id") or request_id_from(None)


# -- health and metrics ----------------------------------------------------------------------------


async def live(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def upstream_health(request: web.Request) -> web.Response:
    gw: Gateway = request.app["gateway"]
    if not await gw.upstream_healthy():
        raise unavailable("the model server is not healthy")
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    gw: Gateway = request.app["gateway"]
    if gw.draining.draining:  # leaving: the Service sends new requests elsewhere
        raise unavailable("the gateway is stopping; finishing the requests in progress")
    if reason := gw.directory.unready_reason():  # keys not loaded, or a cache gone stale
        raise unavailable(reason)
    if gw.shared is not None and (reason := gw.shared.unready_reason()):
        raise unavailable(reason)  # never reached the store: its limits would be guesses
    if not await gw.upstream_healthy():
        raise unavailable("the model server is not healthy")
    await gw.max_model_len()  # learnt before traffic arrives, not on the first request
    if gw.shared is not None:  # ready on its shares while the store is away: say so
        return web.json_response({"status": "ok", "store": gw.shared.health.status()})
    return web.json_response({"status": "ok"})


async def load(request: web.Request) -> web.Response:
    """The load the front doors' replica pickers compare (``paitient_common.gateway_load``):
    no tenant, no request content, like ``/metrics``."""
    gw: Gateway = request.app["gateway"]
    return web.json_response((await gw.load()).to_json())


async def metrics(request: web.Request) -> web.Response:
    gw: Gateway = request.app["gateway"]
    await gw.model_load.refresh()  # vLLM's own running and waiting counts, read on loopback
    return web.Response(body=gw.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def not_found(_request: web.Request) -> web.Response:
    raise NotFoundError("no such route")


def create_app(gateway: Gateway) -> web.Application:
    # The body limit is enforced by the handlers (with our error shape); this is a backstop.
    app = web.Application(middlewares=[frame], client_max_size=gateway.config.body_limit + 1)
    app["gateway"] = gateway
    app.router.add_post(COMPLETIONS, proxy.completions)
    app.router.add_post(CHAT_COMPLETIONS, proxy.completions)
    app.router.add_get("/v1/models", proxy.models)
    app.router.add_get("/healthz/live", live)
    app.router.add_get("/healthz/ready", ready)
    app.router.add_get("/healthz/upstream", upstream_health)
    app.router.add_get(LOAD_PATH, load)
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", not_found)
    app.on_response_prepare.append(_add_request_id)
    gateway.draining.install(app)
    app.cleanup_ctx.append(gateway.lifecycle)
    return app


def create_metrics_app(gateway: Gateway) -> web.Application:
    """The optional separate metrics listener (``PAITIENT_METRICS_PORT``)."""
    app = web.Application(middlewares=[frame])
    app["gateway"] = gateway
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", not_found)
    app.on_response_prepare.append(_add_request_id)
    return app

"""The /v1 application: routes, middleware and the shared client session.

Every /v1 call is authenticated with the same library as the gateways; a caller sees only its
own tenant's namespace, so another tenant's deployment id is a 404 exactly like a missing one.
Beside the reference API, OpenAI's chat, completions and models routes (docs/openai.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from paitient_api import deployments, openai_routes, subscription
from paitient_api.door import FrontDoor
from paitient_api.generate import generate
from paitient_api.idempotency import LocalRecords, SharedRecords
from paitient_api.lifecycle import Lifecycle, lifecycle_of
from paitient_api.middleware import authenticate, errors_and_ids, idempotent
from paitient_api.openai_wire import CHAT_COMPLETIONS, COMPLETIONS, MODELS
from paitient_api.openapi import openapi_document

MAX_BODY = 2 * 1024 * 1024


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    if lifecycle_of(request.app).draining:  # SIGTERM: out of the Service before it stops
        return web.json_response({"status": "shutting down"}, status=503)
    if reason := door.callers.unready_reason():  # keys not loaded, or a cache gone stale
        return web.json_response({"status": reason}, status=503)
    health = door.store_health
    if health is None:
        return web.json_response({"status": "ok"})
    if not health.ever_up:  # never reached: idempotency and usage would be this replica's
        return web.json_response(
            {"status": f"the shared store has not answered yet ({health.reason})"}, status=503
        )
    # Unreachable later: still ready, on the fallbacks (Tenant.status, local records).
    return web.json_response({"status": "ok", "store": health.status()})


async def metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(_: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def create_app(door: FrontDoor) -> web.Application:
    app = web.Application(
        middlewares=[errors_and_ids, authenticate, idempotent], client_max_size=MAX_BODY
    )
    app["door"] = door
    local = LocalRecords()
    app["idempotency"] = local
    if door.store is not None and door.store_health is not None:
        app["idempotency_shared"] = SharedRecords(door.store, door.store_health, local)
    Lifecycle().install(app)
    app.router.add_post("/v1/deployments", deployments.create_deployment)
    app.router.add_get("/v1/deployments", deployments.list_deployments)
    app.router.add_get("/v1/deployments/{id}", deployments.get_deployment)
    app.router.add_patch("/v1/deployments/{id}", deployments.update_deployment)
    app.router.add_delete("/v1/deployments/{id}", deployments.delete_deployment)
    app.router.add_get("/v1/deployments/{id}/status", deployments.deployment_status)
    app.router.add_post("/v1/deployments/{id}/generate", generate)
    app.router.add_post("/v1/generate", generate)
    app.router.add_get("/v1/subscription", subscription.subscription)
    app.router.add_post(CHAT_COMPLETIONS, openai_routes.chat_completions)
    app.router.add_post(COMPLETIONS, openai_routes.completions)
    app.router.add_get(MODELS, openai_routes.list_models)
    app.router.add_get(MODELS + "/{model:.+}", openai_routes.get_model)  # names have a "/"
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=300)
        door.http = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=256)
        )
        yield
        await door.http.close()

    app.cleanup_ctx.append(client_session)
    return app


__all__ = ["create_app"]

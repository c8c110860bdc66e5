"""The /v1 application: thin handlers over the Kubernetes API and the gateways.

Every /v1 call is authenticated with the same library as the gateways; a caller sees only its
own tenant's namespace, so another tenant's deployment id is a 404 exactly like a missing one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from paitient_api import mapping, translate
from paitient_api.idempotency import MAX_KEY_LENGTH, IdempotencyTable
from paitient_api.openapi import openapi_document
from paitient_api.routing import GatewayRoute
from paitient_api.schemas import (
    CreateDeployment,
    DeploymentList,
    Generate,
    GenerateForDeployment,
    Subscription,
    UpdateDeployment,
)
from paitient_common.apikeys import AuthFailure, KeyStore, TenantInfo
from paitient_common.errors import (
    ApiError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RequestValidationError,
    ServiceError,
    error_body,
    error_from_body,
    status_of,
)
from paitient_common.kubeapi import Kube, KubeError, Obj

log = logging.getLogger("paitient.api")
audit = logging.getLogger("paitient.api.audit")
MD = (mapping.API_VERSION, mapping.KIND)
TENANT = ("paitient.ai/v1alpha1", "Tenant")
MAX_BODY = 2 * 1024 * 1024
K8S_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
ID_RE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FrontDoor:
    """What the handlers need: the cluster, the callers' keys, and the way to the gateways."""

    kube: Kube
    keys: KeyStore
    route: GatewayRoute
    ready: Callable[[], bool]
    http: aiohttp.ClientSession | None = None

    async def k8s(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the Kubernetes API off the event loop, riding out what the API server says is
        momentary (429 while a new resource's storage initialises, 5xx, an uncounted quota)."""
        for delay in (*K8S_RETRY_DELAYS, None):
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except KubeError as exc:
                if delay is None or not _transient(exc):
                    raise
                log.warning(
                    "kubernetes API answered %s %s; retrying in %.1f s",
                    exc.status,
                    exc.reason,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


def _transient(exc: KubeError) -> bool:
    return (
        exc.status == 429
        or exc.status >= 500
        or (exc.status == 403 and "status unknown for quota" in exc.message)
    )


def _tenant(request: web.Request) -> TenantInfo:
    tenant: TenantInfo = request["tenant"]
    return tenant


@web.middleware
async def errors_and_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = f"req_{uuid.uuid4().hex}"
    request["request_id"] = request_id
    started = time.monotonic()
    try:
        response = await handler(request)
    except ApiError as err:
        response = web.json_response(
            error_body(err, request_id), status=err.status, headers=err.headers
        )
    except web.HTTPException as exc:  # aiohttp's own (404 route, 405 method, 413 size)
        mapped = _from_http(exc)
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        response = web.json_response(
            error_body(mapped, request_id), status=mapped.status, headers=allow
        )
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.rel_url.path)
        response = web.json_response(error_body(ServiceError(), request_id), status=500)
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
                "route": request.match_info.route.resource.canonical
                if request.match_info.route.resource
                else None,
                "method": request.method,
                "status": response.status,
                "latency_ms": round((time.monotonic() - started) * 1000, 2),
            }
        )
    )
    return response


def _from_http(exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return NotFoundError("no such route")
    if exc.status == 405:
        return RequestValidationError("method not allowed on this route", status=405)
    if exc.status == 413:
        return RequestValidationError("request body too large", status=413)
    return RequestValidationError(exc.reason or "bad request", status=400)


@web.middleware
async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Replay the first answer to a retried write that carries the same Idempotency-Key."""
    key = request.headers.get("Idempotency-Key")
    tenant = request.get("tenant")
    if request.method not in ("POST", "PATCH", "DELETE") or not key or tenant is None:
        return await handler(request)
    if len(key) > MAX_KEY_LENGTH:
        raise RequestValidationError("Idempotency-Key is longer than 128 characters", status=400)
    table: IdempotencyTable = request.app["idempotency"]
    slot = f"{request.method} {request.path} {key}"
    entry, first = table.claim(tenant.name, slot)
    if not first:
        await entry.done.wait()
        if entry.status > 0:
            return web.Response(
                status=entry.status, body=entry.body, content_type=entry.content_type
            )
        return await handler(request)  # the first attempt left nothing to replay
    try:
        response = await handler(request)
    except ApiError as err:
        if err.status < 500:
            body = json.dumps(error_body(err, request["request_id"])).encode()
            table.complete(entry, err.status, body, "application/json")
        else:
            table.abandon(tenant.name, slot, entry)
        raise
    except BaseException:
        table.abandon(tenant.name, slot, entry)
        raise
    if (
        isinstance(response, web.Response)
        and response.status < 500
        and isinstance(response.body, bytes)
    ):
        table.complete(entry, response.status, response.body, response.content_type)
    else:
        table.abandon(tenant.name, slot, entry)
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/") or request.path == "/v1/openapi.json":
        return await handler(request)
    door: FrontDoor = request.app["door"]
    headers = request.headers
    if len(headers.getall("Authorization", [])) != 1 or len(headers.getall("X-Client-ID", [])) != 1:
        raise AuthenticationError()
    result = door.keys.verify(headers.get("Authorization"), headers.get("X-Client-ID"))
    if isinstance(result, AuthFailure):
        raise AuthenticationError()
    if result.suspended:
        raise PermissionDeniedError("this client's subscription is suspended")
    request["tenant"] = result.tenant
    request["key_id"] = result.key_id
    return await handler(request)


async def _json(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        raw = await request.read()
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        raise RequestValidationError("body must be UTF-8 JSON", status=400) from None
    if not isinstance(data, dict):
        raise RequestValidationError("body must be a JSON object", status=400)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError.from_pydantic(exc.errors()) from None


def _ok(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


def _kube_error(exc: KubeError) -> ApiError:
    """The API server's refusals in our shape; its messages name fields and rules, not data."""
    if exc.status == 404:
        return NotFoundError("deployment not found")
    if exc.status == 409:
        return ConflictError("a deployment with this name already exists")
    if exc.status == 422:
        return RequestValidationError(exc.message.split(": ", 1)[-1][:500], status=422)
    if exc.status == 403 and "exceeded quota" in exc.message:
        return PermissionDeniedError(
            "your subscription tier allows no more deployments of this size"
        )
    return ServiceError("the cluster did not answer as expected", status=503)


async def _get_md(request: web.Request, deployment_id: str) -> Obj:
    door: FrontDoor = request.app["door"]
    if not _valid_id(deployment_id):
        raise NotFoundError("deployment not found")
    try:
        md = await door.k8s(door.kube.get, *MD, deployment_id, namespace=_tenant(request).namespace)
    except KubeError as exc:
        raise _kube_error(exc) from None
    if md is None:
        raise NotFoundError("deployment not found")
    found: Obj = md
    return found


def _valid_id(value: str) -> bool:
    return bool(ID_RE.fullmatch(value))


# -- handlers ----------------------------------------------------------------------------------


async def create_deployment(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    body = await _json(request, CreateDeployment)
    tenant = _tenant(request)
    md = mapping.build_model_deployment(body, tenant.namespace, tenant.client_id)
    try:
        created = await door.k8s(door.kube.create, md)
    except KubeError as exc:
        raise _kube_error(exc) from None
    return _ok(mapping.to_deployment(created), status=202)


async def list_deployments(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    items = await door.k8s(door.kube.list, *MD, namespace=_tenant(request).namespace)
    return _ok(DeploymentList(data=[mapping.to_deployment(md) for md in items]))


async def get_deployment(request: web.Request) -> web.Response:
    return _ok(mapping.to_deployment(await _get_md(request, request.match_info["id"])))


async def deployment_status(request: web.Request) -> web.Response:
    return _ok(mapping.to_status(await _get_md(request, request.match_info["id"])))


async def update_deployment(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    md = await _get_md(request, request.match_info["id"])
    patch = mapping.update_patch(await _json(request, UpdateDeployment))
    try:
        updated = await door.k8s(
            door.kube.patch,
            *MD,
            md["metadata"]["name"],
            patch,
            namespace=_tenant(request).namespace,
        )
    except KubeError as exc:
        raise _kube_error(exc) from None
    return _ok(mapping.to_deployment(updated))


async def delete_deployment(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    md = await _get_md(request, request.match_info["id"])
    await door.k8s(
        door.kube.delete, *MD, md["metadata"]["name"], namespace=_tenant(request).namespace
    )
    return web.json_response({"id": md["metadata"]["name"], "deleted": True}, status=202)


async def subscription(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    tenant = _tenant(request)
    obj = await door.k8s(door.kube.get, *TENANT, tenant.name) or {}
    status = obj.get("status") or {}
    return _ok(
        Subscription(
            tier=str(status.get("tier") or tenant.tier),
            current_usage=int(status.get("currentUsage") or 0),
            usage_limit=int(status.get("usageLimit") or 0),
            period_start=status.get("periodStart"),
            period_end=status.get("periodEnd"),
        )
    )


async def generate(request: web.Request) -> web.StreamResponse:
    in_path = request.match_info.get("id")
    body: GenerateForDeployment = await _json(
        request, GenerateForDeployment if in_path else Generate
    )
    deployment_id = in_path or body.deployment_id  # type: ignore[attr-defined]
    md = await _get_md(request, deployment_id)
    phase = (md.get("status") or {}).get("phase")
    if phase != "Ready":
        raise ServiceError(
            f"deployment {deployment_id} is not ready (status: {str(phase or 'pending').lower()})",
            status=503,
        )
    door: FrontDoor = request.app["door"]
    assert door.http is not None
    base = door.route.url(md["metadata"]["name"], md["metadata"]["namespace"])
    if base is None:
        raise ServiceError(f"deployment {deployment_id} has no gateway yet", status=503)
    url = base + "/v1/completions"
    served = (md.get("spec", {}).get("model") or {}).get("name") or md["metadata"]["name"]
    headers = {
        "Authorization": request.headers["Authorization"],
        "X-Client-ID": request.headers["X-Client-ID"],
        "x-request-id": request["request_id"],
    }
    payload = translate.completion_request(body, served)
    try:
        upstream = await door.http.post(url, json=payload, headers=headers)
    except (aiohttp.ClientError, TimeoutError):
        raise ServiceError("the deployment's gateway is unreachable", status=502) from None
    async with upstream:
        if upstream.status >= 400:
            try:
                err_body = await upstream.json(content_type=None)
            except (ValueError, aiohttp.ClientError):
                err_body = None
            raise error_from_body(upstream.status, err_body)
        if not body.stream:
            return _ok(translate.generation(await upstream.json(content_type=None), deployment_id))
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


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    if not door.ready():
        return web.json_response({"status": "keys not loaded"}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(_: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def create_app(door: FrontDoor) -> web.Application:
    app = web.Application(
        middlewares=[errors_and_ids, authenticate, idempotent], client_max_size=MAX_BODY
    )
    app["door"] = door
    app["idempotency"] = IdempotencyTable()
    app.router.add_post("/v1/deployments", create_deployment)
    app.router.add_get("/v1/deployments", list_deployments)
    app.router.add_get("/v1/deployments/{id}", get_deployment)
    app.router.add_patch("/v1/deployments/{id}", update_deployment)
    app.router.add_delete("/v1/deployments/{id}", delete_deployment)
    app.router.add_get("/v1/deployments/{id}/status", deployment_status)
    app.router.add_post("/v1/deployments/{id}/generate", generate)
    app.router.add_post("/v1/generate", generate)
    app.router.add_get("/v1/subscription", subscription)
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


__all__ = ["FrontDoor", "create_app", "status_of"]

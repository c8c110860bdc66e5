"""Reading requests and answering them: bodies, the caller's tenant, its deployments."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from paitient_api import mapping
from paitient_api.door import FrontDoor
from paitient_common.apikeys import TenantInfo
from paitient_common.errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RequestValidationError,
    ServiceError,
)
from paitient_common.kubeapi import KubeError, Obj

log = logging.getLogger("paitient.api")
MD = (mapping.API_VERSION, mapping.KIND)
ID_RE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def caller(request: web.Request) -> TenantInfo:
    tenant: TenantInfo = request["tenant"]
    return tenant


async def read_json(request: web.Request) -> tuple[bytes, dict[str, Any]]:
    """The body as sent and as a JSON object (400 when it is not one)."""
    try:
        raw = await request.read()
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        raise RequestValidationError("body must be UTF-8 JSON", status=400) from None
    if not isinstance(data, dict):
        raise RequestValidationError("body must be a JSON object", status=400)
    return raw, data


async def read_body(request: web.Request, model: type[BaseModel]) -> Any:
    _, data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError.from_pydantic(exc.errors()) from None


def answer(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


def kube_error(exc: KubeError) -> ApiError:
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


async def get_model_deployment(request: web.Request, deployment_id: str) -> Obj:
    door: FrontDoor = request.app["door"]
    if not valid_id(deployment_id):
        raise NotFoundError("deployment not found")
    try:
        md = await door.k8s(door.kube.get, *MD, deployment_id, namespace=caller(request).namespace)
    except KubeError as exc:
        raise kube_error(exc) from None
    if md is None:
        raise NotFoundError("deployment not found")
    found: Obj = md
    return found


def valid_id(value: str) -> bool:
    return bool(ID_RE.fullmatch(value))


# -- handlers ----------------------------------------------------------------------------------

"""Handlers of /v1/deployments."""

from __future__ import annotations

from aiohttp import web

from paitient_api import mapping
from paitient_api.door import FrontDoor
from paitient_api.request_context import (
    MD,
    answer,
    caller,
    get_model_deployment,
    kube_error,
    read_body,
)
from paitient_api.schemas import CreateDeployment, DeploymentList, UpdateDeployment
from paitient_common.kubeapi import KubeError


async def create_deployment(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    body = await read_body(request, CreateDeployment)
    tenant = caller(request)
    md = mapping.build_model_deployment(body, tenant.namespace, tenant.client_id)
    try:
        created = await door.k8s(door.kube.create, md)
    except KubeError as exc:
        raise kube_error(exc) from None
    return answer(mapping.to_deployment(created), status=202)


async def list_deployments(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    items = await door.k8s(door.kube.list, *MD, namespace=caller(request).namespace)
    return answer(DeploymentList(data=[mapping.to_deployment(md) for md in items]))


async def get_deployment(request: web.Request) -> web.Response:
    return answer(
        mapping.to_deployment(await get_model_deployment(request, request.match_info["id"]))
    )


async def deployment_status(request: web.Request) -> web.Response:
    return answer(mapping.to_status(await get_model_deployment(request, request.match_info["id"])))


async def update_deployment(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    md = await get_model_deployment(request, request.match_info["id"])
    patch = mapping.update_patch(await read_body(request, UpdateDeployment))
    try:
        updated = await door.k8s(
            door.kube.patch,
            *MD,
            md["metadata"]["name"],
            patch,
            namespace=caller(request).namespace,
        )
    except KubeError as exc:
        raise kube_error(exc) from None
    return answer(mapping.to_deployment(updated))


async def delete_deployment(request: web.Request) -> web.Response:
    door: FrontDoor = request.app["door"]
    md = await get_model_deployment(request, request.match_info["id"])
    await door.k8s(
        door.kube.delete, *MD, md["metadata"]["name"], namespace=caller(request).namespace
    )
    return web.json_response({"id": md["metadata"]["name"], "deleted": True}, status=202)

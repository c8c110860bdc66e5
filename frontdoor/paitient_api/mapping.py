"""Between the API's shapes and ModelDeployment objects (pure)."""

from __future__ import annotations

import re
import secrets
from typing import Any

from paitient_api.schemas import (
    Autoscaling,
    Condition,
    CreateDeployment,
    Deployment,
    DeploymentStatus,
    UpdateDeployment,
    model_source,
)

API_VERSION = "paitient.ai/v1alpha1"
KIND = "ModelDeployment"
CREATED_BY = "paitient.ai/created-by"


def default_name(model_name: str) -> str:
    """``ZimaBlueAI/HuatuoGPT-o1-8B`` -> ``huatuogpt-o1-8b-x7k2p9``: readable and unique.

    A URI names it after its last part: ``pvc://models/tiny-llama`` -> ``tiny-llama-…``.
    """
    base = re.sub(r"[^a-z0-9-]+", "-", model_name.rsplit("/", 1)[-1].lower()).strip("-")
    base = re.sub(r"^[^a-z]+", "", base)[:50].rstrip("-") or "model"
    return f"{base}-{secrets.token_hex(3)}"


def build_model_deployment(
    request: CreateDeployment, namespace: str, client_id: str
) -> dict[str, Any]:
    name = request.deployment_name or default_name(request.model_name)
    spec: dict[str, Any] = {"model": model_source(request.model_name), "useGpu": request.use_gpu}
    if request.autoscaling is None:
        spec["replicas"] = request.replicas
    else:
        spec["autoscaling"] = autoscaling_spec(request.autoscaling)
    if request.use_gpu:
        spec["gpu"] = {"count": request.gpu_count or 1}
        if request.gpu_product:
            spec["gpu"]["product"] = request.gpu_product
    if request.max_model_len:
        spec["runtime"] = {"maxModelLen": request.max_model_len}
    resources = {"cpu": request.cpu, "memory": request.memory}
    if any(resources.values()):
        spec["resources"] = {k: v for k, v in resources.items() if v}
    if request.routing is not None and request.routing.to_spec():
        spec["routing"] = request.routing.to_spec()
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "annotations": {CREATED_BY: client_id}},
        "spec": spec,
    }


def autoscaling_spec(request: Autoscaling) -> dict[str, Any]:
    """``spec.autoscaling`` from the API's shape."""
    spec: dict[str, Any] = {
        "minReplicas": request.min_replicas,
        "maxReplicas": request.max_replicas,
        "target": {
            "metric": "inFlight" if request.target_metric == "in_flight" else "waiting",
            "value": request.target_value,
        },
    }
    if request.scale_down_delay is not None:
        spec["scaleDownDelay"] = request.scale_down_delay
    if request.stabilization_window is not None:
        spec["stabilizationWindow"] = request.stabilization_window
    return spec


def _replicas(md: dict[str, Any]) -> int:
    """What the deployment asks for: the spec's count, or the autoscaler's current decision."""
    spec, status = md.get("spec") or {}, md.get("status") or {}
    if spec.get("autoscaling"):
        desired = status.get("desiredReplicas")
        return int(desired if desired is not None else spec["autoscaling"].get("minReplicas", 1))
    return int(spec.get("replicas", 1))


def update_patch(request: UpdateDeployment) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if request.replicas is not None:
        spec["replicas"] = request.replicas
    if request.max_model_len is not None:
        spec["runtime"] = {"maxModelLen": request.max_model_len}
    if request.routing is not None and request.routing.to_spec():
        spec["routing"] = request.routing.to_spec()
    return {"spec": spec}


def _model_name(model: dict[str, Any]) -> str | None:
    """What the caller gave as model_name: the Hugging Face repo id, or the URI."""
    return model.get("name") or model.get("uri")


# The ModelDeployment's phases as the API spells them.
_STATUSES = {
    "Pending": "pending",
    "Progressing": "progressing",
    "Ready": "ready",
    "Degraded": "degraded",
    "Failed": "failed",
    "ScaledToZero": "scaled-to-zero",
}


def api_status(md: dict[str, Any]) -> str:
    """The deployment's status word: its phase, in the API's spelling."""
    phase = str((md.get("status") or {}).get("phase") or "Pending")
    return _STATUSES.get(phase, "pending")


def to_deployment(md: dict[str, Any]) -> Deployment:
    spec, status, meta = md.get("spec", {}), md.get("status") or {}, md["metadata"]
    use_gpu = bool(spec.get("useGpu", True))
    return Deployment(
        id=meta["name"],
        name=meta["name"],
        model_name=_model_name(spec.get("model") or {}),
        status=api_status(md),  # type: ignore[arg-type]
        use_gpu=use_gpu,
        gpu_count=int((spec.get("gpu") or {}).get("count", 1)) if use_gpu else 0,
        replicas=_replicas(md),
        ready_replicas=int(status.get("readyReplicas") or 0),
        endpoint=status.get("endpoint"),
        message=str(status.get("message") or ""),
        created_at=meta.get("creationTimestamp"),
    )


def to_status(md: dict[str, Any]) -> DeploymentStatus:
    status = md.get("status") or {}
    return DeploymentStatus(
        id=md["metadata"]["name"],
        status=api_status(md),  # type: ignore[arg-type]
        ready_replicas=int(status.get("readyReplicas") or 0),
        replicas=int(status.get("replicas") or 0),
        message=str(status.get("message") or ""),
        conditions=[
            Condition(
                type=c.get("type", ""),
                status=c.get("status", ""),
                reason=c.get("reason", ""),
                message=c.get("message", ""),
            )
            for c in status.get("conditions") or []
        ],
    )

"""One real vLLM deployment for the whole session: the tiny model on the real node, delivered as a
user delivers an offline model (a PVC filled by a Job, ``model.uri: pvc://tiny-model/...``).

Real vLLM pods take about a minute to start and 4-6 GiB each on a 2-core node, so the tests that
need one (make up's end-to-end path, the NetworkPolicy traffic table, what reaches vLLM, the
pods' security) share this one. Half a core each lets it sit beside the chart's pods and another
model pod (vLLM then runs one OpenMP thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_localcluster.stack.tiny_model import MODEL_URI, fill_model_claim
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for
from tests.unit.operator.factories import make_md

NAME = "tiny-llama"
MD_LABEL = "paitient.ai/modeldeployment"
CPU, MEMORY = "500m", "6Gi"
# vLLM loads the tiny model in about a minute on this machine (longer when it is busy).
READY_TIMEOUT = 420


@dataclass(frozen=True)
class RealModel:
    tenant: dict[str, str]  # name, client_id, key, namespace
    allowed: str  # a namespace the deployment lets in besides the front door's
    name: str = NAME

    @property
    def namespace(self) -> str:
        return self.tenant["namespace"]

    def pod(self, kube: Kube) -> dict[str, Any]:
        """Its Ready pod, as it is now (looked up each time: a test may outlive a pod)."""
        return model_pod(kube, self.namespace, self.name, ready=True)


def model_pod(kube: Kube, namespace: str, name: str, ready: bool) -> dict[str, Any]:
    """The ModelDeployment's pod once its gateway runs (and, with ``ready``, the pod is Ready)."""

    def pod() -> dict[str, Any] | None:
        for p in kube.list("v1", "Pod", namespace=namespace, label_selector=f"{MD_LABEL}={name}"):
            statuses = {c["name"]: c for c in p.get("status", {}).get("containerStatuses") or []}
            gateway = statuses.get("gateway", {})
            if p["metadata"].get("deletionTimestamp") or not p["status"].get("podIP"):
                continue
            if "running" in gateway.get("state", {}):
                conditions = p["status"].get("conditions") or []
                if not ready or any(
                    c["type"] == "Ready" and c["status"] == "True" for c in conditions
                ):
                    return p
        return None

    return wait_for(pod, timeout=READY_TIMEOUT if ready else 120, what=f"{namespace}/{name}'s pod")


def start_real_model(kube: Kube) -> RealModel:
    """A tenant with a key, the claim filled, the CPU deployment created and its pod Ready."""
    tenant = make_tenant(kube)
    allowed = f"{tenant['name']}-allowed"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": allowed}})
    model = RealModel(tenant, allowed)
    try:
        fill_model_claim(kube, model.namespace)
        kube.create(
            make_md(NAME).namespace(model.namespace).cpu_only().resources(CPU, MEMORY)
            .uri(MODEL_URI).allow(allowed).storage("1Gi", "encrypted-local").manifest()
        )  # fmt: skip
        model.pod(kube)
    except BaseException:
        stop_real_model(kube, model)
        raise
    return model


def stop_real_model(kube: Kube, model: RealModel) -> None:
    admin.delete_tenant(kube, model.tenant["name"], force=True)
    kube.delete("v1", "Namespace", model.allowed)

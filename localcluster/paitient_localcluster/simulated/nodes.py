"""The simulated nodes of the local cluster, as plain manifests (pure).

KWOK manages nodes carrying the ``kwok.x-k8s.io/node: fake`` annotation: it makes them Ready
and runs their pods' lifecycle. GPU nodes carry what the NVIDIA GPU operator puts on real ones:
``nvidia.com/gpu`` capacity, the ``nvidia.com/gpu.*`` labels and the ``nvidia.com/gpu`` taint.
"""

from __future__ import annotations

from typing import Any

GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
GPUS_PER_NODE = 8
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def build_node(
    name: str,
    *,
    gpus: int = 0,
    product: str = GPU_PRODUCT,
    cpu: str = "64",
    memory: str = "512Gi",
    pods: int = 110,
) -> dict[str, Any]:
    """A KWOK-managed node; with ``gpus`` > 0 it looks like a GPU operator-managed node."""
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        "paitient.ai/simulated": "true",
    }
    capacity = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "1Ti"}
    spec: dict[str, Any] = {}
    if gpus:
        labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": product,
            "nvidia.com/gpu.count": str(gpus),
            "nvidia.com/gpu.memory": "81559",
            "nvidia.com/gpu.family": "hopper",
            "nvidia.com/cuda.driver.major": "550",
        }
        capacity["nvidia.com/gpu"] = str(gpus)
        spec["taints"] = [dict(GPU_TAINT)]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1],
                "node.alpha.kubernetes.io/ttl": "0",
            },
        },
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def default_nodes(gpu_nodes: int = 2, cpu_nodes: int = 1) -> list[dict[str, Any]]:
    """Two 8-GPU H100 nodes and one CPU-only node, unless told otherwise."""
    nodes = [build_node(f"gpu-node-{i}", gpus=GPUS_PER_NODE) for i in range(gpu_nodes)]
    nodes += [build_node(f"cpu-node-{i}") for i in range(cpu_nodes)]
    return nodes

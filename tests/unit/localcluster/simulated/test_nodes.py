"""KWOK's simulated nodes as manifests: GPU nodes look like the GPU operator's, CPU nodes have no GPU labels."""

from __future__ import annotations

from paitient_localcluster.simulated.nodes import GPU_TAINT, build_node, default_nodes


def test_default_nodes_are_two_h100_gpu_nodes_and_one_cpu_node() -> None:
    nodes = default_nodes()
    gpu = [n for n in nodes if "nvidia.com/gpu" in n["status"]["capacity"]]
    cpu = [n for n in nodes if "nvidia.com/gpu" not in n["status"]["capacity"]]
    assert len(gpu) == 2 and len(cpu) == 1
    for node in gpu:
        assert node["status"]["capacity"]["nvidia.com/gpu"] == "8"
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        labels = node["metadata"]["labels"]
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert labels["nvidia.com/gpu.count"] == "8"
        assert node["spec"]["taints"] == [GPU_TAINT]
        assert GPU_TAINT == {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    assert "taints" not in cpu[0]["spec"]
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)


def test_cpu_node_has_no_gpu_labels() -> None:
    labels = build_node("c")["metadata"]["labels"]
    assert not any(k.startswith("nvidia.com/") for k in labels)

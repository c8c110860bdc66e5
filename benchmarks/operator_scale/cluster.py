"""A throwaway local cluster for a burst: KWOK nodes only, with GPU room for every pod.

Each part of the benchmark (our operator, KubeAI, the tenants) gets a fresh cluster made the
same way, so each starts from the same state: the three default simulated nodes plus
``BENCH_NODES`` H100 nodes of ``GPUS_PER_BENCH_NODE`` GPUs each, no real node (its two CPUs
could not hold hundreds of pods).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from paitient_common.kubeapi import Kube
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane.ports import Ports, spare_ports
from paitient_localcluster.simulated.nodes import GPU_PRODUCT, build_node

BENCH_NODES = 5
GPUS_PER_BENCH_NODE = 250
PODS_PER_BENCH_NODE = 260


def bench_nodes() -> list[dict[str, object]]:
    """The simulated GPU nodes with room for 1,250 one-GPU pods (pure)."""
    return [
        build_node(
            f"bench-gpu-{n}",
            gpus=GPUS_PER_BENCH_NODE,
            product=GPU_PRODUCT,
            cpu="1000",
            memory="8Ti",
            pods=PODS_PER_BENCH_NODE,
        )
        for n in range(BENCH_NODES)
    ]


def _nodes_ready(kube: Kube) -> bool:
    nodes = kube.list("v1", "Node")
    return bool(nodes) and all(
        any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n["status"].get("conditions", [])
        )
        and not any(t["key"] == "node.kubernetes.io/not-ready" for t in n["spec"].get("taints", []))
        for n in nodes
    )


@contextlib.contextmanager
def throwaway_cluster(
    prefix: str, *, model_pods_ready_at_once: bool, log: Callable[[str], None] = print
) -> Iterator[tuple[LocalCluster, Kube, Path]]:
    """(cluster, admin client, a scratch directory); the cluster is stopped and its directory
    removed afterwards, also on failure."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        cluster = LocalCluster(
            run_dir=work / "cluster",
            ports=spare_ports(reserved=Ports.from_env().every_port()),
            log=lambda _m: None, real_node=False,
            model_pods_ready_at_once=model_pods_ready_at_once,
        )  # fmt: skip
        try:
            started = time.monotonic()
            cluster.up()
            kube = Kube.from_kubeconfig(str(cluster.kubeconfig))
            for node in bench_nodes():
                kube.create(node)
            deadline = time.monotonic() + 60
            while not _nodes_ready(kube):
                if time.monotonic() > deadline:
                    raise RuntimeError("the bench nodes did not turn Ready within 60 s")
                time.sleep(0.5)
            log(
                f"[cluster] up with {BENCH_NODES} bench GPU nodes in {time.monotonic() - started:.1f} s"
            )
            yield cluster, kube, work
        finally:
            cluster.down(quiet=True)

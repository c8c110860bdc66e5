"""A CPU ModelDeployment on the local cluster's real node, from ``kubectl apply`` to real vLLM's
first answer through the gateway, and the model pod's memory.

    make bench-model-pod [ARGS="--rounds 2"]
    make bench-model-pod ARGS="--rounds 1 --cold"   # the vllm-cpu image not on the node
    python benchmarks/bench_model_pod.py --smoke     # one round (a test runs it)

Uses the running local cluster (starts one if none runs, and stops it again), an operator of its
own, and a tenant of its own; the tiny model reaches a PVC by a Job from the tiny-model image, as
in tests/integration/test_model_pods_on_the_real_node.py. The vllm-cpu image is already on the
node (imported when the cluster starts): these are warm-image figures. With ``--cold`` each
round first removes the vllm-cpu image from the node's containerd (``ctr images rm --sync``: its
content and unpacked snapshots are garbage-collected, except layers another image shares) and
times its import from the oci-archive by the import ``make cluster`` runs (nothing can be pulled
here: the import stands in for a pull), then the round below; the image is imported again at the
end, also on failure. Each round:

- ``kubectl apply`` of the ModelDeployment -> its pod Ready (vLLM's readiness: model loaded);
- ``kubectl apply`` -> the first completion (4 tokens) answered through the gateway by the
  Service's DNS name with TLS verified, from a pod in the front door's namespace, retried once a
  second;
- the resident memory of each container's processes once it serves.

The last line is a JSON summary. ``--smoke`` is one warm round: it still starts real vLLM on the
real node (a minute or two), so its test runs with the real-vLLM tests.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from benchmarks.summary import print_summary  # noqa: E402
from paitient_common.kubeapi import Kube  # noqa: E402
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY  # noqa: E402
from paitient_images import image  # noqa: E402
from paitient_localcluster.cluster import LocalCluster  # noqa: E402
from paitient_localcluster.host.linux import Enter  # noqa: E402
from paitient_localcluster.node.runtime import NodeImage, built_images, import_images, remove_image  # noqa: E402
from paitient_localcluster.stack.tiny_model import MODEL_URI, fill_model_claim  # noqa: E402
from tests.integration.node_pods import (  # noqa: E402
    COMPLETE,
    KUBECTL,
    PROBE_IMAGE,
    SLEEP,
    create_ready,
    exec_python,
    pod_manifest,
)
from tests.integration.stack_helpers import operator_and_tenant  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402
from tests.unit.operator.factories import make_md  # noqa: E402

FRONT_DOOR_NAMESPACE = "paitient-system"
NAME = "local-model"  # the name COMPLETE asks for
MD = ("paitient.ai/v1alpha1", "ModelDeployment")
VLLM_CPU = "vllm-cpu"  # the image a CPU ModelDeployment runs, in the images index

# Resident memory of every process the container sees, in MiB.
RSS = """
import pathlib
total = 0
for status in pathlib.Path("/proc").glob("[0-9]*/status"):
    try:
        fields = dict(l.split(":", 1) for l in status.read_text().splitlines())
    except OSError:
        continue
    total += int(fields.get("VmRSS", "0 kB").split()[0])
print(total // 1024)
"""


def model_pod(kube: Kube, namespace: str) -> dict[str, object] | None:
    """The deployment's pod once it is Ready."""
    for pod in kube.list(
        "v1", "Pod", namespace=namespace, label_selector=f"paitient.ai/modeldeployment={NAME}"
    ):
        conditions = pod.get("status", {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return pod
    return None


def one_round(kube: Kube, kubeconfig: Path, tenant: dict[str, str], caller: str) -> list[str]:
    """Apply, wait for Ready and the first answer, measure memory, delete; the figures' lines."""
    ns = tenant["namespace"]
    manifest = (
        make_md(NAME).namespace(ns).cpu_only().resources("1", "6Gi")
        .uri(MODEL_URI).storage("1Gi", "encrypted-local").manifest()
    )  # fmt: skip
    bundle = kube.get("v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=FRONT_DOOR_NAMESPACE)
    assert bundle is not None
    url = f"https://{NAME}.{ns}.svc.cluster.local:8443/v1/completions"
    started = time.monotonic()
    subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
        input=yaml.safe_dump(manifest), text=True, check=True, capture_output=True,
    )  # fmt: skip
    ready_pod = wait_for(lambda: model_pod(kube, ns), timeout=600, interval=0.5, what="pod Ready")
    ready = time.monotonic() - started

    def answered() -> bool:
        done = exec_python(kubeconfig, FRONT_DOOR_NAMESPACE, caller, COMPLETE, url,
                           tenant["key"], tenant["client_id"], bundle["data"][CA_BUNDLE_KEY])  # fmt: skip
        return done.returncode == 0 and done.stdout.split()[:1] == ["200"]

    wait_for(answered, timeout=600, interval=1, what="the first completion")
    first = time.monotonic() - started
    pod_name = str(ready_pod["metadata"]["name"])  # type: ignore[index]
    memory = {
        container: exec_python(kubeconfig, ns, pod_name, RSS, container=container).stdout.strip()
        for container in ("vllm", "gateway")
    }
    kube.delete(*MD, NAME, namespace=ns)
    wait_for(lambda: model_pod(kube, ns) is None and not kube.list("v1", "Pod", namespace=ns,
             label_selector=f"paitient.ai/modeldeployment={NAME}"), timeout=120,
             what="the model pod gone")  # fmt: skip
    return [
        f"{ready:.1f}",
        f"{first:.1f}",
        f"vllm {memory['vllm']} MiB, gateway {memory['gateway']} MiB",
    ]


def disk_bytes(path: Path) -> int:
    """Bytes under ``path`` on disk (``du``): what removing an image freed."""
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


class ColdImage:
    """Removes the vllm-cpu image from the real node and times its import back."""

    def __init__(self) -> None:
        cluster = LocalCluster(log=lambda _m: None)
        self.enter: Enter = cluster.namespaces.enter(cluster.run_dir)
        self.root = cluster.node_layout.containerd_root
        self.image: NodeImage = built_images()[VLLM_CPU]

    def remove(self) -> str:
        """Remove the image (an error when it was not there); what that freed."""
        before = disk_bytes(self.root)
        if not remove_image(self.image, self.enter):
            raise SystemExit(f"{self.image.ref} was not on the node: nothing to measure cold")
        return f"removing it freed {(before - disk_bytes(self.root)) / 2**30:.1f} GiB"

    def import_seconds(self) -> float:
        started = time.monotonic()
        imported = import_images([self.image], self.enter)
        assert imported == [self.image.ref], imported
        return time.monotonic() - started

    def restore(self) -> None:
        """The image on the node again (imported only when it is missing)."""
        import_images([self.image], self.enter)


def cold_round(cold: ColdImage, measure: Callable[[], list[str]]) -> list[str]:
    """Remove the image, import it (timed), then the round; import time, totals from it."""
    freed = cold.remove()
    imported = cold.import_seconds()
    ready, first, memory = measure()
    return [
        f"{imported + float(ready):.1f}",
        f"{imported + float(first):.1f}",
        f"{memory}; import {imported:.1f} s ({freed}), then apply -> Ready {ready} s, "
        f"-> first completion {first} s",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--cold", action="store_true",
        help="each round: the vllm-cpu image removed from the node, timed from its import",
    )  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="one warm round")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.cold = 1, False
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    caller = f"bench-caller-{uuid.uuid4().hex[:6]}"
    with (
        tempfile.TemporaryDirectory(prefix="paitient-bench-pod-") as work,
        operator_and_tenant(Path(work)) as (kube, kubeconfig, tenant),
    ):
        try:
            fill_model_claim(kube, tenant["namespace"])
            create_ready(kube, FRONT_DOOR_NAMESPACE,
                         pod_manifest(caller, image(PROBE_IMAGE).reference, SLEEP))  # fmt: skip
            cold = ColdImage() if args.cold else None

            def measure() -> list[str]:
                return one_round(kube, kubeconfig, tenant, caller)

            rows = [cold_round(cold, measure) if cold else measure() for _ in range(args.rounds)]
        finally:
            kube.delete("v1", "Pod", caller, namespace=FRONT_DOOR_NAMESPACE)
            if args.cold:
                ColdImage().restore()
    start = "import" if args.cold else "apply"
    for number, (ready, first, memory) in enumerate(rows, 1):
        print(
            f"round {number}: {start} -> pod Ready {ready} s, -> first completion {first} s; "
            f"{memory}"
        )
    print(
        f"median: {start} -> pod Ready {statistics.median(float(r[0]) for r in rows):.1f} s, "
        f"-> first completion through the gateway {statistics.median(float(r[1]) for r in rows):.1f} s"
    )
    print_summary(
        __file__, args.smoke, cold=args.cold,
        rounds=[{"ready_s": float(r[0]), "first_completion_s": float(r[1]), "memory": r[2]} for r in rows],
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

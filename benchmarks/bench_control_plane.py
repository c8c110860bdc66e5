"""Figures of the local cluster: cold and warm builds, start until every node is Ready (the real
node on its own too), a small pod's create -> Ready on the real node, resident memory at rest.

    python benchmarks/bench_control_plane.py          # start, pods, memory (uses the caches)
    python benchmarks/bench_control_plane.py --cold   # also cold and warm builds
    python benchmarks/bench_control_plane.py --smoke  # one cluster with its real node, one pod

A cold build uses an empty binary cache and an empty GOCACHE; a warm build an empty binary cache
and the GOCACHE the cold build left (the Go module download cache is kept for both: they measure
compiling, not the network). The throwaway clusters' node holds the pause image only (from
`make images`), which the small pod runs too. Results go to stdout; docs/benchmarks.md records
them, and the last line is a JSON summary. ``--smoke`` (a test runs it) starts only the cluster
with the real node, times one pod and reads memory after 1 s at rest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.summary import print_summary
from paitient_common.kubeapi import Kube
from paitient_localcluster.cluster import NODE_PROCESSES, LocalCluster
from paitient_localcluster.controlplane.pki import NODE_NAME
from paitient_localcluster.controlplane.ports import Ports, spare_ports
from paitient_localcluster.host import cgroups
from paitient_localcluster.node.runtime import PAUSE_IMAGE, built_images
from paitient_localcluster.upstream.build import ensure_built
from paitient_localcluster.upstream.versions import CONTROL_PLANE, NODE, Component


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed_build(components: Sequence[Component], gocache: Path) -> dict[str, float]:
    """Build ``components`` into a throwaway binary cache with ``gocache``; seconds each."""
    scratch = Path(tempfile.mkdtemp(prefix="paitient-build-"))
    saved = {k: os.environ.get(k) for k in ("PAITIENT_CACHE_DIR", "GOCACHE")}
    os.environ["PAITIENT_CACHE_DIR"] = str(scratch / "bin")
    os.environ["GOCACHE"] = str(gocache)
    seconds = {}
    try:
        for component in components:
            started = time.monotonic()
            ensure_built(lambda m: print(m, file=sys.stderr), [component])
            seconds[component.name] = time.monotonic() - started
        return seconds
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)


def builds() -> None:
    with tempfile.TemporaryDirectory(prefix="paitient-gocache-") as gocache:
        for label in ("cold", "warm"):  # warm: the GOCACHE the cold build filled
            for group, components in (("control plane", CONTROL_PLANE), ("node", NODE)):
                seconds = timed_build(components, Path(gocache))
                parts = ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
                print(f"{label} build, {group}: {sum(seconds.values()):.0f} s ({parts})")


def pod_ready_seconds(kube: Kube, image: str, runs: int = 5) -> list[float]:
    """Create a one-container pod on the real node, time until it is Ready, delete it."""
    namespace = "bench-pods"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    times = []
    for i in range(runs):
        name = f"small-{i}"
        started = time.monotonic()
        kube.create(
            {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "nodeName": NODE_NAME, "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never"}],
                },
            }
        )  # fmt: skip
        while not _ready(kube.get("v1", "Pod", name, namespace=namespace)):
            time.sleep(0.05)
        times.append(time.monotonic() - started)
        kube.delete("v1", "Pod", name, namespace=namespace)
    return times


def _ready(pod: dict[str, object] | None) -> bool:
    status = pod.get("status", {}) if pod else {}
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def memory(cluster: LocalCluster, rest: float) -> float:
    """Print each process's resident memory after ``rest`` seconds; the total in MiB."""
    time.sleep(rest)
    total = node_total = 0.0
    for name, pid in cluster.running().items():
        mib = rss_mib(pid) if pid else 0.0
        total += mib
        node_total += mib if name in NODE_PROCESSES else 0.0
        print(f"  rss {name:<24} {mib:7.0f} MiB")
    recorded = {p for p in cluster.running().values() if p}
    others = cgroups.pids(cgroups.find(cluster.namespaces.name)) - recorded
    extra = sum(rss_mib(p) for p in others)
    print(f"  rss {'shims, pods, launchers':<24} {extra:7.0f} MiB ({len(others)} processes)")
    print(
        f"resident memory after {rest:.0f} s at rest: {total + extra:.0f} MiB in all, "
        f"the real node's programs {node_total:.0f} MiB"
    )
    return total + extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also time cold and warm builds")
    parser.add_argument("--rest", type=float, default=30.0, help="seconds at rest before RSS")
    parser.add_argument("--smoke", action="store_true", help="one cluster, one pod, seconds")
    args = parser.parse_args()
    kinds, pods, rest = ((True,), 1, 1.0) if args.smoke else ((False, True), 5, args.rest)
    figures: dict[str, float] = {}
    # A SIGTERM (timeout, Ctrl-C in make) must still run the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.cold:
        builds()

    pause = {PAUSE_IMAGE: built_images()[PAUSE_IMAGE]}
    ensure_built(lambda m: print(m, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="paitient-bench-") as run_dir:
        for real_node in kinds:
            cluster = LocalCluster(
                run_dir=Path(run_dir) / f"cluster-{real_node}",
                ports=spare_ports(reserved=Ports.from_env().every_port()),
                log=lambda m: print(m, file=sys.stderr) if "Ready in" in m else None,
                real_node=real_node,
                node_images=pause,
            )
            try:
                started = time.monotonic()
                cluster.up()
                seconds = time.monotonic() - started
                kind = "with the real node" if real_node else "KWOK nodes only"
                print(
                    f"warm start until all {len(cluster.node_summary())} nodes Ready ({kind}): "
                    f"{seconds:.1f} s"
                )
                figures["start_real_node_s" if real_node else "start_kwok_only_s"] = seconds
                if real_node:
                    kube = Kube.from_kubeconfig(str(cluster.kubeconfig))
                    times = pod_ready_seconds(kube, pause[PAUSE_IMAGE].ref, pods)
                    print(
                        f"small pod create -> Ready on the real node: median "
                        f"{statistics.median(times):.2f} s ({', '.join(f'{t:.2f}' for t in times)})"
                    )
                    figures["pod_ready_median_s"] = statistics.median(times)
                    figures["rss_mib"] = memory(cluster, rest)
            finally:
                cluster.down(quiet=True)
    print_summary(__file__, args.smoke, **{k: round(v, 2) for k, v in figures.items()})


if __name__ == "__main__":
    main()

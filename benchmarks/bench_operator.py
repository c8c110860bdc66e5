"""500 ModelDeployments applied at once on a throwaway local cluster, until all are Ready.

    python benchmarks/bench_operator.py [--count 500] [--quiet 30] [--smoke]

Prints: wall time until every ModelDeployment is Ready; the operator's API requests (from the
API server's audit log) per ModelDeployment and per reconcile; its writes during a quiet period
after all are Ready (goal: zero); its resident memory. CPU-only deployments with small requests
on three large simulated nodes, so the scheduler has room for every pod: this throwaway cluster
has KWOK nodes only (no real node), where pods turn Ready without running. ``--smoke``: 3
ModelDeployments, a 1 s quiet period, and a failure (exit 1) unless all are Ready within 3
minutes, so a refused manifest or a stuck reconcile shows (a test runs it). The last line is a
JSON summary.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.summary import print_summary  # noqa: E402
from paitient_common.kubeapi import Kube  # noqa: E402
from paitient_common.resources.install import install_crds  # noqa: E402
from paitient_localcluster.cluster import LocalCluster  # noqa: E402
from paitient_localcluster.controlplane import audit  # noqa: E402
from paitient_localcluster.controlplane.ports import Ports, spare_ports  # noqa: E402
from paitient_localcluster.simulated.nodes import build_node  # noqa: E402

NAMESPACE = "bench"
METRICS_PORT = 46499


def manifest(i: int) -> dict[str, object]:
    return {
        "apiVersion": "paitient.ai/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": f"md-{i:04d}", "namespace": NAMESPACE},
        "spec": {
            "model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"},
            "useGpu": False,
            # CPU vLLM needs its runtime reserve and a KV cache (vllm_cpu.py): 6Gi is the least
            # a CPU deployment is served with; the nodes below hold 500 of them.
            "resources": {"cpu": "100m", "memory": "6Gi"},
            "storage": {"size": "1Gi", "storageClassName": "encrypted-local"},
        },
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reconciles(url: str) -> float:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("paitient_operator_reconciles_total{")
    )


def prepare(cluster: LocalCluster) -> Kube:
    """Start the throwaway cluster with room for every pod, and the CRDs."""
    cluster.up()
    kube = Kube.from_kubeconfig(str(cluster.kubeconfig))
    for n in range(3):
        kube.create(build_node(f"bench-node-{n}", cpu="1000", memory="8Ti", pods=250))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    install_crds(kube)
    time.sleep(5)  # let the new nodes turn Ready
    return kube


def start_operator(
    cluster: LocalCluster, log_path: Path, verbose: bool = False
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(cluster.layout.kubeconfig("operator"))}
    with log_path.open("wb") as out:
        operator = subprocess.Popen(
            [sys.executable, "-m", "paitient_operator.main", "--metrics-address", f"127.0.0.1:{METRICS_PORT}"]
            + (["--verbose"] if verbose else []),
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    time.sleep(3)
    return operator


def apply_and_wait(kube: Kube, count: int, limit: float) -> tuple[float, float, int]:
    """Apply ``count`` ModelDeployments at once (a refused one raises); (seconds to apply,
    seconds to Ready, how many are Ready), waiting at most ``limit`` seconds."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: kube.create(manifest(i)), range(count)))
    applied = time.monotonic() - started
    ready = 0
    while time.monotonic() - started < limit:
        items = kube.list("paitient.ai/v1alpha1", "ModelDeployment", namespace=NAMESPACE)
        ready = sum(1 for m in items if m.get("status", {}).get("phase") == "Ready")
        if ready == count:
            break
        time.sleep(1)
    return applied, time.monotonic() - started, ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--quiet", type=float, default=30.0, help="quiet period, seconds")
    parser.add_argument(
        "--operator-log", type=Path, help="keep the operator's debug log at this path"
    )
    parser.add_argument("--smoke", action="store_true", help="3 objects, seconds")
    args = parser.parse_args()
    count, quiet, limit = (3, 1.0, 180.0) if args.smoke else (args.count, args.quiet, 1800.0)
    # A SIGTERM (timeout, Ctrl-C in make) must still run the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="paitient-bench-op-") as tmp:
        # KWOK nodes only (no real node, whose two CPUs could not hold 500 pods), and no data plane
        # runs 500 gateways here: KWOK reports model pods Ready itself, as it did before readiness
        # was left to the data plane; this measures the operator alone.
        cluster = LocalCluster(
            run_dir=Path(tmp) / "cluster",
            ports=spare_ports(reserved=Ports.from_env().every_port()),
            log=lambda _m: None, real_node=False, model_pods_ready_at_once=True,
        )  # fmt: skip
        operator: subprocess.Popen[bytes] | None = None
        try:
            kube = prepare(cluster)
            log_path = args.operator_log or Path(tmp) / "operator.log"
            operator = start_operator(cluster, log_path, verbose=args.operator_log is not None)
            offset = audit.log_size(cluster.layout.audit_log)
            applied, wall, ready = apply_and_wait(kube, count, limit)
            time.sleep(3)
            settled = audit.log_size(cluster.layout.audit_log)
            events = [
                e
                for e in audit.read_events(cluster.layout.audit_log, offset)
                if e.user == "paitient-operator"
            ]
            count_reconciles = reconciles(f"http://127.0.0.1:{METRICS_PORT}/metrics")
            time.sleep(quiet)
            quiet_writes = audit.writes_by(
                audit.read_events(cluster.layout.audit_log, settled), "paitient-operator"
            )
            report(
                count,
                applied,
                wall,
                ready,
                events,
                count_reconciles,
                quiet_writes,
                quiet,
                operator.pid,
                args.smoke,
            )
            if ready != count:
                sys.exit(f"only {ready} of {count} ModelDeployments Ready within {limit:.0f} s")
        finally:
            try:
                if operator is not None:
                    operator.terminate()
                    try:
                        operator.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        print("operator did not stop within 60 s of SIGTERM: killed")
                        operator.kill()
                        operator.wait()
            finally:
                cluster.down(quiet=True)


def report(
    count: int,
    applied: float,
    wall: float,
    ready: int,
    events: list[audit.AuditEvent],
    count_reconciles: float,
    quiet_writes: list[audit.AuditEvent],
    quiet: float,
    pid: int,
    smoke: bool,
) -> None:
    by_kind = collections.Counter(
        (e.verb, e.resource + (f"/{e.subresource}" if e.subresource else "")) for e in events
    )
    print(f"ModelDeployments: {count} (applied in {applied:.1f} s)")
    print(
        f"all Ready after: {wall:.1f} s"
        if ready == count
        else f"only {ready} Ready after {wall:.0f} s"
    )
    print(f"operator API requests: {len(events)} = {len(events) / count:.1f} per ModelDeployment")
    print(
        f"reconciles: {count_reconciles:.0f} = {count_reconciles / count:.1f} per ModelDeployment; "
        f"{len(events) / max(count_reconciles, 1):.1f} API requests per reconcile"
    )
    print(f"operator writes during {quiet:.0f} s quiet period after all Ready: {len(quiet_writes)}")
    for e in quiet_writes[:20]:
        print(
            f"    quiet write: {e.verb} {e.resource}{'/' + e.subresource if e.subresource else ''} {e.namespace}/{e.name} -> {e.code}"
        )
    print(f"operator resident memory: {rss_mib(pid):.0f} MiB")
    print("requests by verb and resource:")
    for (verb, resource), n in by_kind.most_common():
        print(f"  {n:6d}  {verb:<7} {resource}")
    print_summary(
        __file__, smoke, count=count, ready=ready, wall_s=round(wall, 1), requests=len(events),
        reconciles=count_reconciles, quiet_writes=len(quiet_writes),
    )  # fmt: skip


if __name__ == "__main__":
    main()

"""Controllers at scale on throwaway local clusters: our operator, KubeAI beside it, tenants.

    python benchmarks/bench_operator.py [--count 500] [--smoke] [--kubeai-bin F --kubeai-src D]

Each part runs on a fresh cluster of KWOK nodes only (``operator_scale/cluster.py``: the same
simulated H100 nodes each time, room for every pod), every API request counted from the API
server's audit log by the identity that made it:

1. Our operator: ``--count`` GPU ModelDeployments created at once until all are Ready; a quiet
   period (its writes: goal none); the operator restarted with all of them Ready (time until it
   has re-verified every one, and its writes); ``--count`` more, until all are Ready (memory at
   twice the count).
2. KubeAI's controller, the same burst of its ``Model`` resources (minReplicas 1, so it makes a
   pod for each, on the same simulated GPUs): wall time, requests per model, memory. Needs its
   binary and source (``operator_scale/kubeai.py`` says how to get them); skipped with the
   reason when they are missing.
3. ``--tenants`` Tenants created at once until all are Ready; a key in each; the last tenant's
   key on its first request at the front door and at a gateway; the caches' memory.

Progress is printed every few seconds; a failure (a refused spec, a pod that cannot be placed)
or ``--stall`` seconds without progress stops the run at once with the object and its condition.
``--smoke``: a handful of each, in seconds (tests/benchmarks/test_smoke.py runs it).
The last line printed is its JSON summary (``benchmarks/summary.py``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.operator_scale import kubeai, ours, tenants  # noqa: E402
from benchmarks.operator_scale.cluster import throwaway_cluster  # noqa: E402
from benchmarks.operator_scale.figures import load_average  # noqa: E402
from benchmarks.operator_scale.progress import BenchStopped  # noqa: E402
from benchmarks.summary import print_summary  # noqa: E402

SMOKE = {"count": 5, "quiet": 3.0, "tenants": 5, "stall": 60.0, "kubeai_timeout": 300.0}


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    print(f"== our operator: {args.count} ModelDeployments at once ({args.replicas} replica(s))")
    with throwaway_cluster("paitient-bench-op-", model_pods_ready_at_once=True) as (
        cluster, kube, work,
    ):  # fmt: skip
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ours.NAMESPACE}})
        operators = ours.Operators(cluster, args.keep_logs or work, args.replicas)
        try:
            operators.start()
            first = ours.burst(cluster, kube, operators, 0, args.count, args.stall, print)
            for line in first.lines(f"{args.count} ModelDeployments"):
                print(line)
            quiet = ours.quiet_writes(cluster, args.quiet)
            print(f"operator writes during a {args.quiet:.0f} s quiet period: {len(quiet)}")
            for e in quiet[:20]:
                print(f"    quiet write: {e.verb} {e.resource} {e.namespace}/{e.name} -> {e.code}")
            restarted = ours.restart(cluster, operators, args.count, args.stall, print)
            for line in restarted.lines():
                print(line)
            second = ours.burst(cluster, kube, operators, args.count, args.count, args.stall, print)
            for line in second.lines(f"{args.count} more ModelDeployments (to {2 * args.count})"):
                print(line)
        finally:
            operators.stop()
    return {
        "burst": first.summary(),
        "quiet_writes": len(quiet),
        "restart": restarted.summary(),
        "second_burst": second.summary(),
    }


def run_kubeai(args: argparse.Namespace) -> dict[str, Any]:
    print(f"== KubeAI's controller: {args.count} Models at once")
    try:
        peer = kubeai.KubeAI.locate(args.kubeai_src, args.kubeai_bin)
    except kubeai.Unavailable as missing:
        print(f"KubeAI skipped: {missing}")
        return {"skipped": str(missing)}
    with throwaway_cluster("paitient-bench-kubeai-", model_pods_ready_at_once=True) as (
        cluster, kube, work,
    ):  # fmt: skip
        figures = kubeai.run(
            cluster, kube, peer, args.keep_logs or work, args.count, args.stall,
            args.kubeai_timeout, print,
        )  # fmt: skip
    for line in figures.lines(f"{args.count} KubeAI Models"):
        print(line)
    return figures.summary()


def run_tenants(args: argparse.Namespace) -> dict[str, Any]:
    print(f"== {args.tenants} Tenants at once")
    with throwaway_cluster("paitient-bench-tenants-", model_pods_ready_at_once=False) as (
        cluster, kube, work,
    ):  # fmt: skip
        # Longer than the minute between the controller's looks at every Tenant.
        quiet = args.quiet if args.smoke else max(args.quiet, 70.0)
        figures = tenants.run(
            cluster, kube, args.keep_logs or work, args.replicas, args.tenants, args.stall, quiet,
            print,
        )  # fmt: skip
    for line in figures.lines():
        print(line)
    return figures.summary()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count", type=int, default=500, help="ModelDeployments (and Models) per burst"
    )
    parser.add_argument("--quiet", type=float, default=30.0, help="quiet period, seconds")
    parser.add_argument("--stall", type=float, default=60.0,
                        help="stop when nothing turned Ready for this long, seconds")  # fmt: skip
    parser.add_argument("--replicas", type=int, default=1, help="operator processes")
    parser.add_argument("--smoke", action="store_true", help="a handful of each, in seconds")
    parser.add_argument("--keep-logs", type=Path, help="write the controllers' logs here")
    parser.add_argument("--tenants", type=int, default=1000, help="Tenants at once (0: skip)")
    parser.add_argument("--skip-ours", action="store_true", help="not our operator's part")
    parser.add_argument("--skip-kubeai", action="store_true", help="not KubeAI's part")
    parser.add_argument("--kubeai-src", type=Path,
                        help=f"KubeAI's source tree at commit {kubeai.PIN}")  # fmt: skip
    parser.add_argument("--kubeai-bin", type=Path, help="KubeAI's controller built from it")
    parser.add_argument("--kubeai-timeout", type=float, default=3600.0,
                        help="give up on KubeAI's burst after this long, seconds")  # fmt: skip
    if "--smoke" in sys.argv[1:]:  # smaller defaults; an option given still wins
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    if args.keep_logs:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
    # A SIGTERM (timeout, Ctrl-C in make) must still run the clean-up of each part.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary: dict[str, Any] = {"count": args.count}
    print(f"load average at the start: {load_average()}")
    try:
        if not args.skip_ours:
            summary["ours"] = run_ours(args)
            print(f"load average after our operator's part: {load_average()}")
        if not args.skip_kubeai:
            summary["kubeai"] = run_kubeai(args)
            print(f"load average after KubeAI's part: {load_average()}")
        if args.tenants:
            summary["tenants"] = run_tenants(args)
            print(f"load average after the tenants' part: {load_average()}")
    except BenchStopped as stopped:
        print(f"STOPPED: {stopped}")
        print_summary(__file__, args.smoke, **summary, stopped=str(stopped))
        return 1
    print_summary(__file__, args.smoke, **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

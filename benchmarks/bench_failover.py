"""How fast the control plane recovers from losing one pod, and what clients see meanwhile.

    python benchmarks/bench_failover.py [--rounds 5] [--smoke] [--no-dataplane] [--chart]

Operator, on the local cluster (the worktree's, reused when running, else started and stopped
again): two operator processes on one Lease and, unless --no-dataplane, a data plane of their
own (GPU deployments on the simulated nodes turn Ready through it). For SIGKILL (a lost node:
the Lease must lapse) and SIGTERM (a rolling upgrade: the leader hands the Lease back), the
seconds from the leader's end to the standby holding the Lease, and to a ModelDeployment created
at that moment being Ready.

--chart, on the real node: the chart installed with its defaults (two front doors, two
operators, the store), a tiny model served by real vLLM, a steady load from the Python SDK
(retries on; generate, a stream, the subscription, the deployment list): client errors and
retries the SDK absorbed during a rolling upgrade of the front door and during a deleted
front-door pod (and what a crashed one costs them: its process SIGKILLed); and the handover
after the operator leader's process is SIGKILLed.

--smoke: one round of the operator figures (tests/integration/test_operator_failover.py runs it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.summary import print_summary  # noqa: E402
from paitient_common.kubeapi import Kube  # noqa: E402
from paitient_common.resources.install import install_crds  # noqa: E402
from paitient_localcluster.cluster import LocalCluster  # noqa: E402
from tests.integration.chart_release import ready_pods  # noqa: E402
from tests.integration.failover import Candidates, candidates  # noqa: E402
from tests.integration.ha_stack import (  # noqa: E402
    crash_front_door_pod,
    delete_front_door_pod,
    ha_stack,
    kill_operator_leader,
    roll_front_door,
    under_load,
)
from tests.integration.stack_helpers import start_data_plane  # noqa: E402
from tests.integration.steady_load import Outcome  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402
from tests.unit.operator.factories import make_md  # noqa: E402

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
SIGNALS = {"kill": "SIGKILL", "stop": "SIGTERM"}


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"median {statistics.median(ordered):.1f} s, min {ordered[0]:.1f}, "
            f"max {ordered[-1]:.1f} (n={len(ordered)})")  # fmt: skip


def _phase(kube: Kube, ns: str, name: str) -> str | None:
    return ((kube.get(*MD, name, namespace=ns) or {}).get("status") or {}).get("phase")


def _handover_round(
    kube: Kube, pair: Candidates, namespace: str, how: Literal["kill", "stop"], name: str
) -> tuple[float, float]:
    """(seconds to the standby holding the Lease, seconds to a ModelDeployment created at the
    leader's end being Ready)."""

    def create() -> None:
        manifest = make_md(name).namespace(namespace).gpus(1).storage("5Gi", "encrypted-local")
        kube.create(manifest.manifest())

    handover = pair.hand_over(how, then=create)

    def ready() -> bool:
        return _phase(kube, namespace, name) == "Ready"

    wait_for(ready, timeout=120, interval=0.05, what=f"{name} Ready")
    ready_after = time.monotonic() - handover.ended_at
    kube.delete(*MD, name, namespace=namespace)
    return handover.seconds, ready_after


def _figures(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_s": round(statistics.median(ordered), 2), "min_s": round(ordered[0], 2),
            "max_s": round(ordered[-1], 2), "n": len(ordered)}  # fmt: skip


def operator_figures(kube: Kube, kubeconfig: Path, work: Path, rounds: int) -> dict[str, Any]:
    """Handover and handover-to-Ready seconds after each signal, by signal name."""
    found: dict[str, Any] = {}
    namespace = f"bench-failover-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})  # fmt: skip
    hows: tuple[Literal["kill", "stop"], ...] = ("kill", "stop")
    try:
        with candidates(kube, kubeconfig, work) as pair:
            pair.wait_leader()
            for how in hows:
                figures = [
                    _handover_round(kube, pair, namespace, how, f"after-{how}-{i}")
                    for i in range(rounds)
                ]
                print(f"operator handover after {SIGNALS[how]}: "
                      f"{summary([f[0] for f in figures])}")  # fmt: skip
                print(f"operator {SIGNALS[how]} -> a ModelDeployment created then is Ready: "
                      f"{summary([f[1] for f in figures])}")  # fmt: skip
                found[SIGNALS[how]] = {"handover": _figures([f[0] for f in figures]),
                                       "ready": _figures([f[1] for f in figures])}  # fmt: skip
    finally:
        kube.delete("v1", "Namespace", namespace)
    return found


def _total(outcomes: list[Outcome]) -> str:
    calls = sum(o.calls for o in outcomes)
    errors = sum(len(o.errors) for o in outcomes)
    retries = sum(sum(o.retries.values()) for o in outcomes)
    reasons = sorted({r for o in outcomes for r in o.retries})
    return (f"{calls} calls, {errors} client errors, {retries} retries absorbed by the SDK "
            f"({'; '.join(reasons) or 'none'}) over {len(outcomes)} rounds")  # fmt: skip


def chart_figures(kube: Kube, kubeconfig: Path, rounds: int) -> dict[str, Any]:
    """Calls and client errors under each disruption, and the leader's handover on the node."""
    found: dict[str, Any] = {}
    with ha_stack(kubeconfig, kube, "bench") as ha:
        disruptions: dict[str, Callable[[], None]] = {
            "rolling upgrade of the front door (helm upgrade)": lambda: roll_front_door(
                kube, ha.release
            ),
            "a front door pod deleted": lambda: delete_front_door_pod(kube, ha.release),
            # A crash drains nothing: what it was serving is cut. The SDK retries a cut request
            # (it carries an Idempotency-Key); a stream cut mid-way is its caller's error.
            "a front door pod's process SIGKILLed": lambda: crash_front_door_pod(kube, ha.release),
        }
        for what, disruption in disruptions.items():
            outcomes = [under_load(ha, disruption) for _ in range(rounds)]
            print(f"{what}, steady SDK load: {_total(outcomes)}")
            found[what] = {"calls": sum(o.calls for o in outcomes),
                           "client_errors": sum(len(o.errors) for o in outcomes)}  # fmt: skip
            for outcome in outcomes:
                for error in outcome.errors[:5]:
                    print(f"  error: {error}")
        handovers = []
        for _ in range(rounds):
            _, _, seconds = kill_operator_leader(kube, ha.release)
            handovers.append(seconds)
            wait_for(lambda: len(ready_pods(kube, ha.release, "operator")) == 2, timeout=180,
                     what="the killed operator back, as a standby")  # fmt: skip
        print(f"operator leader pod's process SIGKILLed, real node: handover {summary(handovers)}")
        found["operator leader SIGKILLed on the real node"] = _figures(handovers)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="repetitions of each figure")
    parser.add_argument("--smoke", action="store_true", help="one round of the operator figures")
    parser.add_argument("--no-dataplane", action="store_true",
                        help="a data plane runs already (the test session's)")  # fmt: skip
    parser.add_argument("--chart", action="store_true",
                        help="also the figures of the chart on the real node (minutes)")  # fmt: skip
    args = parser.parse_args()
    rounds = 1 if args.smoke else args.rounds
    cluster = LocalCluster(log=lambda _m: None)
    reused = cluster.is_healthy()
    kubeconfig = cluster.up()
    kube = Kube.from_kubeconfig(str(kubeconfig))
    install_crds(kube)
    plane = None
    try:
        with tempfile.TemporaryDirectory(prefix="paitient-bench-failover-") as tmp:
            if not args.no_dataplane:
                plane, _ = start_data_plane(kubeconfig, Path(tmp))
            figures = {"operator": operator_figures(kube, kubeconfig, Path(tmp), rounds)}
            if args.chart and not args.smoke:
                figures["chart"] = chart_figures(kube, kubeconfig, rounds)
    finally:
        if plane is not None:
            plane.terminate()
            plane.wait(timeout=30)
        if not reused:
            cluster.down(quiet=True)
    print_summary(__file__, args.smoke, **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

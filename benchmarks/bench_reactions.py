"""How fast the system reacts: the figures the tests wait for with generous bounds, measured.

    python benchmarks/bench_reactions.py [--rounds 5] [--skip-cluster] [--smoke]

Gateway alone (vLLM stand-in, keys file):
  - a hung model: time until the gateway answers 504 (read timeout 1.5 s);
  - SIGKILL under load: 8 clients for 2 s, the gateway killed after 1 s: requests started,
    answered complete, in the ledger, written but never answered, in flight at the kill.
On the local cluster (the worktree's, reused when running, else started and stopped again; an
operator and the local data plane of its own, one tenant):
  - a ModelDeployment from creation to Ready (its gateway answering), and an unplaceable GPU one
    to its GPUCapacity condition.
How fast key changes take effect is ``make bench-keys``'s (benchmarks/bench_keys.py).
``--smoke``: one round of each, the kill after 0.5 s (seconds; a test runs it). The last line is
a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.summary import print_summary  # noqa: E402
from paitient_common.kubeapi import Kube  # noqa: E402
from tests.integration.stack_helpers import operator_and_tenant, start_data_plane  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402
from tests.standins.client import run, sync_call  # noqa: E402
from tests.standins.load import Load, ledger_records  # noqa: E402
from tests.standins.processes import (  # noqa: E402
    configure_standin,
    start_gateway,
    start_standin,
    write_keys_file,
)
from tests.unit.operator.factories import make_md  # noqa: E402

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
READ_TIMEOUT = 1.5


def seconds_until(check: Callable[[], bool], timeout: float = 120) -> float:
    """Seconds from now until ``check()`` holds, polling every 20 ms."""
    started = time.monotonic()
    wait_for(check, timeout=timeout, interval=0.02)
    return time.monotonic() - started


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"median {statistics.median(ms):.0f} ms, min {ms[0]:.0f}, max {ms[-1]:.0f} (n={len(ms)})"


# -- the gateway alone ---------------------------------------------------------------------------


def gateway_figures(work: Path, rounds: int, kill_after: float) -> dict[str, object]:
    standin = start_standin(work)
    gateway = restarted = None
    try:
        callers = write_keys_file(
            work / "keys.json",
            [{"name": "acme", "clientId": "acme-app", "namespace": "tenant-acme"}],
        )
        env = {"PAITIENT_UPSTREAM_READ_TIMEOUT": str(READ_TIMEOUT)}
        gateway = start_gateway(work, work / "keys.json", work / "ledger-hang", standin.url, env)
        configure_standin(standin, fail="hang")
        waits = []
        for _ in range(rounds):
            started = time.monotonic()
            answer = sync_call(
                "POST", f"{gateway.url}/v1/completions", {"prompt": "x", "max_tokens": 1},
                headers=callers["acme"].headers(),
            )  # fmt: skip
            assert answer.status == 504, answer.status
            waits.append(time.monotonic() - started)
        print(f"hung model -> 504 (read timeout {READ_TIMEOUT} s): {summary(waits)}")
        configure_standin(standin, fail=None, tokens_per_second=400)
        gateway.stop()

        ledger = work / "ledger-kill"
        gateway = start_gateway(work, work / "keys.json", ledger, standin.url)
        load = Load(f"{gateway.url}/v1/completions", callers["acme"].headers())

        async def kill_midway() -> int:
            assert gateway is not None
            await asyncio.sleep(kill_after)
            in_flight = load.in_flight()
            await asyncio.to_thread(gateway.kill)
            await asyncio.sleep(kill_after)
            return in_flight

        in_flight = run(load.run(kill_midway()))
        restarted = start_gateway(work, work / "keys.json", ledger, standin.url)
        records = ledger_records(ledger)
        unanswered = {str(r["request_id"]) for r in records} - set(load.received)
        print(
            f"SIGKILL under load (8 clients, {2 * kill_after:g} s, kill at {kill_after:g} s): "
            f"{len(load.started)} started, {len(load.received)} answered complete, "
            f"{len(records)} in the ledger, {len(unanswered)} written but unanswered, "
            f"{in_flight} in flight at the kill"
        )
        return {
            "hung_model_504_ms": [round(w * 1000) for w in waits],
            "kill": {"started": len(load.started), "answered": len(load.received),
                     "in_ledger": len(records), "unanswered_in_ledger": len(unanswered),
                     "in_flight": in_flight},
        }  # fmt: skip
    finally:
        for proc in (restarted, gateway):
            if proc is not None:
                proc.stop()
        standin.stop()


# -- on the local cluster ------------------------------------------------------------------------


def cluster_figures(work: Path) -> dict[str, object]:
    with operator_and_tenant(work) as (kube, kubeconfig, tenant):
        plane, _ = start_data_plane(kubeconfig, work)
        try:
            ns = tenant["namespace"]
            # On a simulated H100 node, served by the data plane (a CPU one runs real vLLM on the
            # real node: that is make bench-model-pod).
            kube.create(make_md("reactions").namespace(ns).gpus(1).manifest())
            ready = seconds_until(lambda: _phase(kube, ns, "reactions") == "Ready")
            print(f"GPU ModelDeployment (simulated node) created -> Ready: {ready * 1000:.0f} ms")
            kube.create(make_md("no-gpu").namespace(ns).gpus(1).product("NVIDIA-B200").manifest())
            stuck = seconds_until(lambda: _ready_reason(kube, ns, "no-gpu") == "GPUCapacity")
            print(
                f"unplaceable GPU ModelDeployment created -> reason GPUCapacity: "
                f"{stuck * 1000:.0f} ms"
            )
            return {"ready_ms": round(ready * 1000), "gpu_capacity_ms": round(stuck * 1000)}
        finally:
            plane.terminate()
            plane.wait(timeout=30)


def _phase(kube: Kube, ns: str, name: str) -> str | None:
    return ((kube.get(*MD, name, namespace=ns) or {}).get("status") or {}).get("phase")


def _ready_reason(kube: Kube, ns: str, name: str) -> str | None:
    conditions = ((kube.get(*MD, name, namespace=ns) or {}).get("status") or {}).get("conditions")
    return next((c.get("reason") for c in conditions or [] if c["type"] == "Ready"), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="repetitions of each timing")
    parser.add_argument("--skip-cluster", action="store_true", help="the gateway figures only")
    parser.add_argument("--smoke", action="store_true", help="one round, seconds")
    args = parser.parse_args()
    rounds, kill_after = (1, 0.5) if args.smoke else (args.rounds, 1.0)
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="paitient-bench-reactions-") as tmp:
        figures["gateway"] = gateway_figures(Path(tmp), rounds, kill_after)
        if not args.skip_cluster:
            figures["cluster"] = cluster_figures(Path(tmp))
    print_summary(__file__, args.smoke, **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

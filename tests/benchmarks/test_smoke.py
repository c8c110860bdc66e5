"""Every benchmark still runs: each ``benchmarks/bench_*.py`` is run with ``--smoke`` (a handful
of objects or requests) and must exit 0 with its JSON summary as the last line (``benchmarks/
summary.py``). A new benchmark joins by its file name; the full runs stay manual (make bench-*).

The local cluster is up first (the session's ``kubeconfig``), so a benchmark that uses "the
running cluster" reuses it rather than starting and stopping one; the session's operators are
paused around each run, since a benchmark that reconciles brings its own. No figure is asserted
(timings belong in docs/benchmarks.md): only what a benchmark claims beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# A benchmark whose smoke run needs the integration session's data plane, operator and front
# door has its own test there (its file named here), which checks its claims too.
OWN_SMOKE_TEST = {
    "bench_autoscale": REPO / "tests/integration/test_bench_autoscale_smoke.py",
    "bench_failover": REPO / "tests/integration/test_operator_failover.py",
    "bench_routing": REPO / "tests/integration/test_bench_routing_smoke.py",
}
BENCHMARKS = sorted(
    p for p in (REPO / "benchmarks").glob("bench_*.py") if p.stem not in OWN_SMOKE_TEST
)
# Seconds a smoke run may take; a real vLLM pod needs its minute or two.
LIMIT = {"bench_model_pod": 900.0, "bench_operator": 540.0}
# The ones that start real vLLM run with the real-vLLM tests.
MARKS = {"bench_model_pod": [pytest.mark.real_vllm, pytest.mark.timeout(960)]}


def _limits_claims(summary: dict[str, Any]) -> None:
    """No overshoot with the shared store; the per-replica design's overshoot beside it."""
    assert summary["store"]["usage_overshoot"] == 0
    assert summary["store"]["rate_overshoot"] == 0
    assert summary["per_replica"]["usage_overshoot"] > 0  # each replica spent the limit alone
    for key in ("gateway_p50_ms", "scripts_p50_ms"):
        assert all(value > 0 for value in summary[key].values())


def _operator_claims(summary: dict[str, Any]) -> None:
    """Every part ran to its end: all Ready in each burst, requests seen in the audit log."""
    ours = summary["ours"]
    assert ours["burst"]["count"] == 5 and ours["burst"]["requests"] > 0
    assert ours["restart"]["count"] == 5
    assert ours["second_burst"]["count"] == 5
    assert "stopped" not in summary


# What a benchmark claims besides its figures, checked on its smoke summary.
CLAIMS: dict[str, Callable[[dict[str, Any]], None]] = {
    "bench_limits": _limits_claims,
    "bench_operator": _operator_claims,
}


def test_every_benchmark_is_found() -> None:
    assert {p.stem for p in BENCHMARKS} >= {"bench_gateway", "bench_limits", "bench_operator"}
    for stem, test in OWN_SMOKE_TEST.items():
        assert (REPO / "benchmarks" / f"{stem}.py").is_file() and test.is_file(), stem


@pytest.mark.parametrize(
    "script",
    [pytest.param(p, id=p.stem, marks=MARKS.get(p.stem, [])) for p in BENCHMARKS],
)
def test_the_benchmark_runs_its_smoke_mode_and_prints_its_summary(
    script: Path, kubeconfig: Path
) -> None:
    with OperatorProcess.others_paused():
        done = subprocess.run(
            [sys.executable, str(script), "--smoke"],
            cwd=REPO, capture_output=True, text=True, timeout=LIMIT.get(script.stem, 420.0),
        )  # fmt: skip
    output = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, output
    lines = done.stdout.strip().splitlines()
    assert lines, output
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == script.stem and summary["smoke"] is True, summary
    CLAIMS.get(script.stem, lambda _s: None)(summary)

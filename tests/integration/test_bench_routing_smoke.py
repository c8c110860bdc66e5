"""``benchmarks/bench_routing.py --smoke`` runs on the simulated cluster, and its summary has
every figure the benchmark reports, for every strategy, with no error and no request to the
Service (the front door picked every replica itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.operator_process import OperatorProcess

REPO = Path(__file__).resolve().parents[2]
FIGURES = {"ttft_p50_ms", "ttft_p90_ms", "tokens_per_s", "picks_over_load_bound", "wall_s"}


def test_the_routing_benchmark_runs(
    kubeconfig: Path, operator: OperatorProcess, dataplane: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_routing.py", "--smoke", "--kubeconfig",
         str(kubeconfig), "--routes", str(dataplane)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["benchmark"] == "bench_routing" and summary["smoke"] is True
    rows = summary["runs"]["smoke"]["strategies"]
    assert [r["strategy"] for r in rows] == ["round-robin", "least-load", "prefix"]
    for row in rows:
        assert set(row) >= FIGURES, row
        assert (row["requests"], row["errors"]) == (24, 0), row
        assert row["requests_to_the_service"] == 0 and row["connections_refused"] == 0, row
    assert rows[2]["picks_over_load_bound"] == 0
    assert summary["runs"]["smoke"]["ttft_p90_round_robin_over_prefix"] > 0

"""``benchmarks/bench_operator.py --smoke`` runs to its end, so a benchmark that cannot run (a
spec the operator now refuses, a peer that no longer starts) fails here instead of waiting
forever in ``make bench-operator``. It times nothing; its figures belong in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_operator_benchmark_runs_in_its_smoke_mode() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_operator.py"), "--smoke"],
        capture_output=True, text=True, timeout=540, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["smoke"] is True
    ours = summary["ours"]
    # Every part ran and counted something: all Ready, requests seen in the audit log.
    assert ours["burst"]["count"] == 5 and ours["burst"]["requests"] > 0
    assert ours["restart"]["count"] == 5
    assert ours["second_burst"]["count"] == 5
    assert "all 5 Ready" in done.stdout and "all 10 Ready" in done.stdout

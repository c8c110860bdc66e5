"""``benchmarks/bench_limits.py --smoke`` runs, and its summary says what the benchmark claims:
no overshoot with the shared store, the per-replica design's overshoot beside it (no figure of
time is asserted: those belong in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmarks_smoke_run_reports_overshoot_and_latency() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_limits.py", "--smoke"],
        cwd=ROOT, capture_output=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert summary["smoke"] is True
    assert summary["store"]["usage_overshoot"] == 0
    assert summary["store"]["rate_overshoot"] == 0
    assert summary["per_replica"]["usage_overshoot"] > 0  # each replica spent the limit alone
    for key in ("gateway_p50_ms", "scripts_p50_ms"):
        assert all(value > 0 for value in summary[key].values())

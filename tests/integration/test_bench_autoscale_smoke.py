"""`make bench-autoscale`'s smoke mode runs end to end on the session's data plane (gateways in
front of the vLLM stand-in), operator and front door: a start from zero (cold and warm), the
step of load, its figures and its drawing. No figure of time is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.frontdoor_process import ApiProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1200)
def test_the_autoscaling_benchmark_runs(
    kubeconfig: Path, stack: ApiProcess, dataplane: Path, tmp_path: Path
) -> None:
    png = tmp_path / "step.png"
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_autoscale.py", "--smoke", "--kubeconfig", str(kubeconfig),
         "--front-door", stack.root, "--routes", str(dataplane), "--png", str(png)],
        cwd=ROOT, capture_output=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert summary["benchmark"] == "bench_autoscale" and summary["smoke"] is True
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for start in ("cold", "warm"):
        steps = summary[start]
        # Kubernetes' timestamps are whole seconds: a pod made within the request's second is 0.
        assert 0 <= steps["pod created"] <= steps["first token at the client"]
    one, six, none = summary["step"]["phases"]
    assert six["most replicas Ready"] == 2 and one["most replicas Ready"] >= 1
    assert six["answers"] > 0 and none["answers"] == 0

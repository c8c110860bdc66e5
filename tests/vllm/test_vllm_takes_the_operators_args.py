"""The pinned vLLM's own parser takes every argument list the operator renders, and the flags
data file the operator checks extraArgs against is the pinned vLLM's."""

from __future__ import annotations

import json
import subprocess
from importlib.resources import files
from pathlib import Path
from typing import get_args

from paitient_operator.builders.vllm_args import build_vllm_args
from paitient_operator.config import OperatorConfig
from paitient_operator.resources.modeldeployment import Dtype, Quantization
from tests.unit.operator.factories import MDFactory, make_md
from tests.unit.operator.test_vllm_flags import ACCEPTED_EXTRA_ARGS, REFUSED_BY_VLLM_TOO
from tests.vllm.upstreams import vllm_python

ROOT = Path(__file__).resolve().parents[2]


def specs() -> dict[str, MDFactory]:
    """A matrix of specs: GPU and CPU, every dtype and quantization, sources, extraArgs."""
    matrix: dict[str, MDFactory] = {
        "gpu-default": make_md("a"),
        "gpu-full": make_md("a").gpus(4).gpu_memory_utilization(0.85).max_model_len(8192),
        "cpu-default": make_md("a").cpu_only(),
        "cpu-context": make_md("a").cpu_only().max_model_len(512).resources(memory="8Gi"),
        "pvc-source": make_md("a").cpu_only().uri("pvc://weights/org/m"),
        "s3-source": make_md("a").uri("s3://bucket/org/m"),
        "hf-revision": make_md("a").model("org/m", revision="v2").token_secret("hf"),
    }
    for dtype in get_args(Dtype):
        matrix[f"dtype-{dtype}"] = make_md("a").dtype(dtype)
    for method in get_args(Quantization):
        matrix[f"quantization-{method}"] = make_md("a").gpus(2).quantization(method)
    for i, extra in enumerate(ACCEPTED_EXTRA_ARGS):
        matrix[f"extra-{i}-{extra[0]}"] = make_md("a").cpu_only().extra_args(*extra)
    return matrix


def parse_in_vllm(cases: dict[str, list[str]]) -> dict[str, str | None]:
    script = (ROOT / "tests/vllm/parse_in_vllm.py").read_text()
    done = subprocess.run(
        [*vllm_python(), "-c", script],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, str | None] = json.loads(done.stdout)
    return result


def test_vllm_parses_every_argument_list_the_operator_renders() -> None:
    config = OperatorConfig()
    cases = {name: build_vllm_args(md.obj(), config) for name, md in specs().items()}
    # What the operator refuses as unknown to vLLM, vLLM's parser refuses too.
    base = build_vllm_args(make_md("a").cpu_only().obj(), config)
    cases |= {f"refused-{i}": [*base, *extra] for i, extra in enumerate(REFUSED_BY_VLLM_TOO)}
    refusals = parse_in_vllm(cases)
    accepted_wrongly = [n for n in cases if n.startswith("refused-") and refusals[n] is None]
    refused = {n: why for n, why in refusals.items() if why and not n.startswith("refused-")}
    assert not refused, refused
    assert not accepted_wrongly, accepted_wrongly


def test_the_flags_file_is_the_pinned_vllms() -> None:
    done = subprocess.run(
        [*vllm_python(), "-c", (ROOT / "scripts/vllm_flags.py").read_text()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    committed = files("paitient_operator.builders").joinpath("vllm_flags.json").read_text("utf-8")
    assert done.stdout == committed, "regenerate with `make vllm-flags`"

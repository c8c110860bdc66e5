"""The pinned vLLM's own parser takes every argument list the operator renders, and the flags
data file the operator checks extraArgs against is the pinned vLLM's."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import get_args

import pytest

from paitient_common.resources.modeldeployment import Dtype, Quantization
from paitient_operator.builders.vllm_args import build_vllm_args
from paitient_operator.config import OperatorConfig
from tests.prerequisites import missing
from tests.unit.operator.factories import MDFactory, make_md
from tests.unit.operator.test_vllm_flags import ACCEPTED_EXTRA_ARGS, REFUSED_BY_VLLM_TOO
from tests.vllm.conftest import VllmSource
from tests.vllm.upstreams import run_in_vllm

pytestmark = pytest.mark.real_vllm

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


@pytest.fixture
def in_vllm(vllm_source: VllmSource, tmp_path: Path) -> Callable[[str, object], str]:
    """``in_vllm(script, data)``: what ``script`` printed, run by the vLLM environment's Python."""
    if vllm_source.missing is not None:
        missing(vllm_source.missing)

    def run(script: str, data: object) -> str:
        code, out, err = run_in_vllm(vllm_source.runner, script, data, tmp_path / "in")
        assert code == 0, err[-3000:]
        return out

    return run


def test_vllm_parses_every_argument_list_the_operator_renders(
    in_vllm: Callable[[str, object], str],
) -> None:
    config = OperatorConfig()
    cases = {name: build_vllm_args(md.obj(), config) for name, md in specs().items()}
    # What the operator refuses as unknown to vLLM, vLLM's parser refuses too.
    base = build_vllm_args(make_md("a").cpu_only().obj(), config)
    cases |= {f"refused-{i}": [*base, *extra] for i, extra in enumerate(REFUSED_BY_VLLM_TOO)}
    script = (ROOT / "tests/vllm/parse_in_vllm.py").read_text()
    refusals: dict[str, str | None] = json.loads(in_vllm(script, cases))
    accepted_wrongly = [n for n in cases if n.startswith("refused-") and refusals[n] is None]
    refused = {n: why for n, why in refusals.items() if why and not n.startswith("refused-")}
    assert not refused, refused
    assert not accepted_wrongly, accepted_wrongly


def test_the_flags_file_is_the_pinned_vllms(in_vllm: Callable[[str, object], str]) -> None:
    printed = in_vllm((ROOT / "scripts/vllm_flags.py").read_text(), None)
    committed = files("paitient_operator.builders").joinpath("vllm_flags.json").read_text("utf-8")
    assert printed == committed, "regenerate with `make vllm-flags`"

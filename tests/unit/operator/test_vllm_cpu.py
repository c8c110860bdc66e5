"""CPU vLLM is sized to its pod: KV cache from the spec's memory, threads from its CPU request."""

from __future__ import annotations

import pytest

from paitient_common.resources.modeldeployment import parse_model_deployment
from paitient_common.resources.shared import InvalidResource
from paitient_operator.builders.deployment import build_deployment
from paitient_operator.builders.vllm_cpu import cpu_env, cpu_kv_cache_gib, cpu_threads
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import InvalidSpec
from paitient_operator.quantity import parse_quantity
from tests.unit.operator.factories import make_md
from tests.unit.operator.test_deployment import container, env_of


@pytest.mark.parametrize(
    ("memory", "kv"),
    [
        ("32Gi", 9),  # (32 - 4) / 3: 19 GiB stay for an 8B bf16 model's 16 GB of weights
        ("64Gi", 20),
        ("6Gi", 1),  # never below 1 GiB
        ("8G", 1),  # decimal units: 7.45 GiB
        ("16384Mi", 4),
    ],
)
def test_kv_cache_is_a_third_of_what_the_runtime_leaves(memory: str, kv: int) -> None:
    assert cpu_kv_cache_gib(make_md("a").cpu_only().resources(memory=memory).obj()) == kv


def test_the_override_wins_and_is_whole_gib() -> None:
    md = make_md("a").cpu_only().resources(memory="32Gi").cpu_kv_cache_space("2.5Gi").obj()
    assert cpu_kv_cache_gib(md) == 2


@pytest.mark.parametrize(
    ("memory", "override", "message"),
    [
        ("5Gi", None, "too small for CPU vLLM"),
        ("4Gi", None, "too small for CPU vLLM"),
        ("16Gi", "12Gi", "leaves no memory for the weights"),
        ("16Gi", "512Mi", "below 1Gi"),
    ],
)
def test_memory_that_cannot_hold_vllm_is_an_invalid_spec(
    memory: str, override: str | None, message: str, config: OperatorConfig
) -> None:
    md = make_md("a").cpu_only().resources(memory=memory)
    if override is not None:
        md = md.cpu_kv_cache_space(override)
    with pytest.raises(InvalidSpec, match=message):
        build_deployment(md.obj(), config)


@pytest.mark.parametrize(
    ("cpu", "threads"), [("4", 3), ("2", 1), ("1", 1), ("500m", 1), ("8.5", 7)]
)
def test_threads_leave_a_core_to_the_server(cpu: str, threads: int) -> None:
    assert cpu_threads(make_md("a").cpu_only().resources(cpu=cpu).obj()) == threads


def test_cpu_pods_get_the_sizing_env_and_gpu_pods_do_not(config: OperatorConfig) -> None:
    cpu = make_md("a").cpu_only().resources(cpu="4", memory="16Gi").obj()
    env = env_of(container(build_deployment(cpu, config), "vllm"))
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    assert env["OMP_NUM_THREADS"] == "3"
    assert cpu_env(cpu) == {k: env[k] for k in cpu_env(cpu)}
    gpu = env_of(container(build_deployment(make_md("b").obj(), config), "vllm"))
    assert not any(k.startswith(("VLLM_CPU_", "OMP_")) for k in gpu)


def test_the_kv_cache_override_is_for_cpu_deployments_only() -> None:
    body = {
        "metadata": {"name": "a", "namespace": "t"},
        "spec": {"model": {"name": "org/m"}, "runtime": {"cpuKvCacheSpace": "2Gi"}},
    }
    with pytest.raises(InvalidResource, match="only be set when useGpu is false"):
        parse_model_deployment(body)


def test_max_model_len_reaches_the_gateway(config: OperatorConfig) -> None:
    md = make_md("a").cpu_only().resources(memory="8Gi").max_model_len(512).obj()
    assert env_of(container(build_deployment(md, config), "gateway"))["PAITIENT_MAX_MODEL_LEN"] == (
        "512"
    )
    unset = env_of(container(build_deployment(make_md("b").obj(), config), "gateway"))
    assert "PAITIENT_MAX_MODEL_LEN" not in unset


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("32Gi", 32 * 1024**3), ("500m", 0.5), ("1e3", 1000), ("1.5k", 1500), (".5Mi", 524288)],
)
def test_quantities(quantity: str, value: float) -> None:
    assert parse_quantity(quantity) == pytest.approx(value)


def test_a_bad_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("lots")

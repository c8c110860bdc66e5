"""vLLM's arguments come from the spec; extraArgs cannot reopen the server or override the spec."""

from __future__ import annotations

import pytest

from paitient_operator.builders.vllm_args import build_vllm_args, check_extra_args
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import ForbiddenRuntimeArgument, InvalidSpec
from tests.unit.operator.factories import make_md


def flag(args: list[str], name: str) -> str | None:
    """The value after ``name`` (exactly one occurrence), or None if absent."""
    positions = [i for i, a in enumerate(args) if a == name]
    assert len(positions) <= 1, f"{name} given twice"
    return args[positions[0] + 1] if positions else None


def test_listens_on_loopback_only(config: OperatorConfig) -> None:
    args = build_vllm_args(make_md("a").obj(), config)
    assert args[:4] == ["--host", "127.0.0.1", "--port", "8000"]


def test_hugging_face_source(config: OperatorConfig) -> None:
    args = build_vllm_args(make_md("a").model("org/m", revision="v2").obj(), config)
    assert flag(args, "--model") == "org/m"
    assert flag(args, "--revision") == "v2"
    assert flag(args, "--served-model-name") == "org/m"
    assert flag(args, "--download-dir") == config.model_cache_mount_path
    assert flag(args, "--load-format") is None


def test_pvc_source_is_the_mounted_path(config: OperatorConfig) -> None:
    args = build_vllm_args(make_md("local").uri("pvc://weights/org/m").obj(), config)
    assert flag(args, "--model") == "/models/source/org/m"
    assert flag(args, "--revision") is None
    assert flag(args, "--served-model-name") == "local"


def test_s3_source_streams_the_uri(config: OperatorConfig) -> None:
    args = build_vllm_args(make_md("a").uri("s3://bucket/org/m").obj(), config)
    assert flag(args, "--model") == "s3://bucket/org/m"
    assert flag(args, "--load-format") == "runai_streamer"


def test_gpu_settings(config: OperatorConfig) -> None:
    md = make_md("a").gpus(4).gpu_memory_utilization(0.85).max_model_len(8192)
    args = build_vllm_args(md.dtype("bfloat16").quantization("awq").obj(), config)
    assert flag(args, "--tensor-parallel-size") == "4"
    assert flag(args, "--gpu-memory-utilization") == "0.85"
    assert flag(args, "--max-model-len") == "8192"
    assert flag(args, "--dtype") == "bfloat16"
    assert flag(args, "--quantization") == "awq"


def test_defaults_leave_optional_flags_out(config: OperatorConfig) -> None:
    args = build_vllm_args(make_md("a").obj(), config)
    assert flag(args, "--tensor-parallel-size") == "1"
    assert flag(args, "--max-model-len") is None
    assert flag(args, "--quantization") is None
    assert flag(args, "--dtype") == "auto"


def test_cpu_has_no_gpu_flags(config: OperatorConfig) -> None:
    args = build_vllm_args(make_md("a").cpu_only().obj(), config)
    assert flag(args, "--tensor-parallel-size") is None
    assert flag(args, "--gpu-memory-utilization") is None


def test_allowed_extra_args_are_appended(config: OperatorConfig) -> None:
    md = make_md("a").extra_args("--max-num-seqs", "64", "--enable-prefix-caching").obj()
    assert build_vllm_args(md, config)[-3:] == ["--max-num-seqs", "64", "--enable-prefix-caching"]


@pytest.mark.parametrize(
    "arg",
    [
        "--host", "--host=0.0.0.0", "--host 0.0.0.0", "--port", "--port=9000", "--uds",
        "--api-key", "--api_key=x", "--allowed-origins", "--allowed-methods",
        "--allowed-headers", "--allow-credentials", "--ssl-keyfile", "--ssl-certfile=/x",
        "--ssl-ca-certs", "--ssl-cert-reqs", "--ssl-anything-new", "--root-path",
        "--middleware", "--enable-admin-api", "--enable-debug-endpoints",
        "--enable-tokenizer-info-endpoint", "--profiler-config", "--config",
        "--allowed-local-media-path", "--enable-log-requests",
        # the spec's own flags
        "--model", "--served-model-name", "--revision", "--download-dir", "--dtype",
        "--tensor-parallel-size", "-tp", "-tp=2", "--max-model-len", "--max_model_len=9",
        "--gpu-memory-utilization", "--quantization", "-q", "--load-format",
        # argparse abbreviations
        "--ho", "--api-k", "--ssl",
    ],
)  # fmt: skip
def test_refused_extra_args(arg: str, config: OperatorConfig) -> None:
    with pytest.raises(ForbiddenRuntimeArgument) as info:
        build_vllm_args(make_md("a").extra_args("--max-num-seqs", "8", arg, "x").obj(), config)
    message = str(info.value)
    assert message.startswith("spec.runtime.extraArgs")
    assert arg.split("=", maxsplit=1)[0].split(maxsplit=1)[0] in message
    assert isinstance(info.value, InvalidSpec)
    assert info.value.reason == "InvalidSpec"


def test_values_that_look_like_words_are_not_flags(config: OperatorConfig) -> None:
    extra = ["--max-num-seqs", "64", "--tokenizer", "host", "--generation-config", "port"]
    args = build_vllm_args(make_md("a").extra_args(*extra).obj(), config)
    assert args[-len(extra) :] == extra  # passed on as given, after the operator's own
    assert flag(args, "--host") == "127.0.0.1"


def test_every_refused_entry_is_named_at_once() -> None:
    with pytest.raises(ForbiddenRuntimeArgument) as info:
        check_extra_args(["--host", "1", "--api-key", "k"])
    assert "--host" in str(info.value) and "--api-key" in str(info.value)


def test_prefix_caching_and_cached_token_counts_are_on_by_default(config: OperatorConfig) -> None:
    args = build_vllm_args(make_md("a").obj(), config)
    assert "--enable-prefix-caching" in args and "--enable-prompt-tokens-details" in args


@pytest.mark.parametrize("extra", [["--no-enable-prefix-caching"], ["--enable-prefix-caching"]])
def test_extra_args_that_set_prefix_caching_either_way_are_the_only_say(
    extra: list[str], config: OperatorConfig
) -> None:
    args = build_vllm_args(make_md("a").extra_args(*extra).obj(), config)
    said = [a for a in args if a.endswith("enable-prefix-caching")]
    assert said == extra  # never two values for one setting
    assert "--enable-prompt-tokens-details" in args

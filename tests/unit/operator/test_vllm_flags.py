"""extraArgs are read the way the pinned vLLM's parser reads them: unknown flags never reach a pod."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import get_args

import pytest

from paitient_common.resources.modeldeployment import Dtype, Quantization
from paitient_operator.builders.vllm_args import check_extra_args
from paitient_operator.builders.vllm_flags import pinned_flags, read_token
from paitient_operator.errors import ForbiddenRuntimeArgument, InvalidSpec

# tests/vllm parses these with the pinned vLLM's own parser: what the operator lets through,
# vLLM takes.
ACCEPTED_EXTRA_ARGS: list[list[str]] = [
        ["--max-num-seqs", "8"],
        ["--max_num_seqs=8"],  # underscores and "=" as vLLM allows
        ["--enable-prefix-caching", "--no-enable-prefix-caching"],
        ["--enforce-eager"],
        ["--seed", "-1"],  # a negative number is a value, not a flag
        ["-O3"],
        ["-O", "2"],
        ["--compilation-config.mode", "3"],  # one key of a JSON flag
        ["--compilation-config", '{"mode": 3}'],
        ["--kv-cache-dtype", "fp8"],
        ["--kv-cache-dtype=auto"],
        ["--hf-token"],  # takes an optional value
        ["--allowed-media-domains", "a.example", "b.example", "--max-num-seqs", "4"],
        ["--no-enable-log-requests"],  # turning a refused switch off is fine
]  # fmt: skip
# ...and these vLLM's parser refuses too (the operator is stricter still: abbreviations, stray
# values and a flag with its value in one entry are refused although argparse might take them).
REFUSED_BY_VLLM_TOO: list[list[str]] = [
    ["--no-such-flag"],
    ["--max-num-sequences", "8"],
    ["--max-num-seqs"],
    ["--enforce-eager=yes"],
    ["--kv-cache-dtype", "fp7"],
    ["-Q", "awq"],
]


@pytest.mark.parametrize("args", ACCEPTED_EXTRA_ARGS)
def test_flags_the_pinned_vllm_knows_are_accepted(args: list[str]) -> None:
    check_extra_args(args)


@pytest.mark.parametrize(
    ("args", "named", "why"),
    [
        (["--max-num-seq", "8"], "--max-num-seq", "abbreviates --max-num-seqs"),
        (["--max-num-sequences", "8"], "--max-num-sequences", "did you mean --max-num-seqs"),
        (["--no-such-flag"], "--no-such-flag", "not a flag of vLLM 0.32.0"),
        (["--max-num-seqs"], "--max-num-seqs", "needs a value"),
        (["--max-num-seqs", "--seed", "1"], "--max-num-seqs", "needs a value"),
        (["--enforce-eager=yes"], "--enforce-eager", "takes no value"),
        (["--enforce-eager", "true"], "true", "follows no flag"),
        (["my-model"], "my-model", "follows no flag"),  # vLLM would take it for the model
        (["--max-num-seqs 8"], "--max-num-seqs", "two entries"),
        (["--kv-cache-dtype", "fp7"], "--kv-cache-dtype", "'fp7' is not one of"),
        (["--kv-cache-dtype=fp7"], "--kv-cache-dtype", "'fp7' is not one of"),
        (["-Q", "awq"], "-Q", "not a flag"),
    ],
)
def test_what_vllm_would_refuse_is_refused_with_the_reason(
    args: list[str], named: str, why: str
) -> None:
    with pytest.raises(ForbiddenRuntimeArgument) as info:
        check_extra_args(args)
    assert isinstance(info.value, InvalidSpec)
    assert f"{named} (" in str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize("args", REFUSED_BY_VLLM_TOO)
def test_what_vllms_parser_refuses_the_operator_refuses(args: list[str]) -> None:
    with pytest.raises(ForbiddenRuntimeArgument):
        check_extra_args(args)


def test_an_alias_of_an_owned_flag_is_refused_like_the_flag() -> None:
    # vLLM 0.32 spells --gpu-memory-utilization also --device-memory-utilization.
    with pytest.raises(ForbiddenRuntimeArgument, match=r"spec\.runtime\.gpuMemoryUtilization"):
        check_extra_args(["--device-memory-utilization", "0.5"])


def test_short_aliases_map_to_their_long_flag() -> None:
    flags = pinned_flags()
    assert flags.aliases["-tp"] == ("--tensor-parallel-size",)
    assert read_token("-O3").option == "--optimization-level"
    assert read_token("--max_model_len=9").option == "--max-model-len"
    assert read_token("--compilation-config.mode").option == "--compilation-config"


def test_the_spec_enums_are_the_pinned_vllms_choices() -> None:
    flags = pinned_flags()
    assert set(get_args(Dtype)) == set(flags.choices["--dtype"])
    assert list(get_args(Quantization)) == list(flags.quantization_methods)


def test_the_data_file_names_the_pinned_version() -> None:
    raw = json.loads(
        files("paitient_operator.builders").joinpath("vllm_flags.json").read_text("utf-8")
    )
    assert raw["vllmVersion"] == pinned_flags().version == "0.32.0"
    assert all(f.startswith("-") for f in raw["flags"])

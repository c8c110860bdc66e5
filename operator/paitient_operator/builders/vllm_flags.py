"""The flags the pinned vLLM accepts, and ``extraArgs`` read the way vLLM's own parser reads them.

``vllm_flags.json`` is generated from vLLM's argument parser by ``scripts/vllm_flags.py`` inside
the vLLM image (``make vllm-flags``), because the operator has no vLLM installed; a test checks it
against the image. Reading the tokens follows ``vllm.utils.argparse_utils.FlexibleArgumentParser``:
``_`` and ``-`` are the same in a long name, ``--flag=value`` and ``--flag value`` both work,
``--json-flag.key value`` sets one key of a JSON flag, ``-O3`` is ``--optimization-level 3``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Final, Literal

Takes = Literal["none", "one", "optional", "many"]

# What argparse takes for a value although it starts with "-" (its negative-number rule).
_NEGATIVE_NUMBER: Final = re.compile(r"^-\d+$|^-\d*\.\d+$")
_OPTIMIZATION_LEVEL: Final = "--optimization-level"


@dataclass(frozen=True)
class VllmFlags:
    """The option strings of one vLLM release: how many values each takes, and its long name."""

    version: str
    takes: Mapping[str, Takes]
    # Every option (short ones included) -> the long options setting the same thing:
    # -tp -> (--tensor-parallel-size,), --gpu-memory-utilization -> (--device-memory-...,
    # --gpu-memory-utilization). A --no-x negation is its own.
    aliases: Mapping[str, tuple[str, ...]]
    choices: Mapping[str, tuple[str, ...]]  # the values a flag accepts, where argparse limits them
    quantization_methods: tuple[str, ...]  # what --quantization accepts (checked at load time)

    def close_matches(self, option: str) -> list[str]:
        return difflib.get_close_matches(option, self.takes, n=2, cutoff=0.75)


@cache
def pinned_flags() -> VllmFlags:
    """The flags of the vLLM release the operator's images run."""
    raw = json.loads(files(__package__).joinpath("vllm_flags.json").read_text(encoding="utf-8"))
    return flags_from(raw)


def flags_from(raw: Mapping[str, object]) -> VllmFlags:
    """``VllmFlags`` from the JSON ``scripts/vllm_flags.py`` prints."""
    entries = raw["flags"]
    assert isinstance(entries, dict)
    takes: dict[str, Takes] = {name: entry["takes"] for name, entry in entries.items()}
    longs: dict[str, list[str]] = {}
    for name, entry in entries.items():
        if name.startswith("--") and not name.startswith("--no-"):
            longs.setdefault(entry["dest"], []).append(name)
    aliases = {
        name: (name,) if name.startswith("--no-") else tuple(longs.get(entry["dest"], [name]))
        for name, entry in entries.items()
    }
    choices = {name: tuple(e["choices"]) for name, e in entries.items() if "choices" in e}
    methods = raw["quantizationMethods"]
    assert isinstance(methods, list)
    return VllmFlags(str(raw["vllmVersion"]), takes, aliases, choices, tuple(methods))


@dataclass(frozen=True)
class Token:
    """One entry of ``extraArgs`` as vLLM would read it."""

    written: str  # as in the spec, up to "=" (what a message quotes)
    option: str | None  # the option string vLLM looks up ("--max-model-len", "-tp"); None: a value
    inline_value: bool  # "--flag=value", "-O3": the value is in the token


def is_value(arg: str) -> bool:
    """True when argparse reads ``arg`` as a value rather than as an option."""
    return not arg.startswith("-") or arg == "-" or bool(_NEGATIVE_NUMBER.match(arg))


def read_token(arg: str) -> Token:
    """Normalise one token the way vLLM's parser does before looking it up."""
    written = arg.split("=", 1)[0]
    if is_value(arg):
        return Token(arg, None, False)
    if arg == "-O":
        return Token(arg, _OPTIMIZATION_LEVEL, False)  # -O 3
    if arg.startswith("-O") and not arg.startswith("--"):
        return Token(written, _OPTIMIZATION_LEVEL, True)  # -O3, -O=3, -Odecode
    if not arg.startswith("--"):
        return Token(written, written, "=" in arg)
    name, eq, _value = arg.partition("=")
    # Only the part before the first "." is a flag's name: the rest are keys of a JSON flag.
    base, _dot, _keys = name[2:].partition(".")
    return Token(written, "--" + base.replace("_", "-"), bool(eq))


@dataclass(frozen=True)
class Problem:
    """Why one entry of ``extraArgs`` cannot be passed to vLLM."""

    written: str
    reason: str


def unknown_flag_problems(args: Sequence[str], flags: VllmFlags) -> Iterator[Problem]:
    """Every entry vLLM would refuse: an unknown or abbreviated flag, a missing value, a stray
    value (vLLM would take it for the model), a flag and its value in one entry."""
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        token = read_token(arg)
        if token.option is None:
            yield Problem(arg, "a value that follows no flag taking one")
            continue
        if re.search(r"\s", arg.split("=", 1)[0]):
            yield Problem(token.written.split()[0], "write a flag and its value as two entries")
            continue
        takes = flags.takes.get(token.option)
        if takes is None:
            yield Problem(token.written, _unknown(token.option, flags))
            continue
        if token.inline_value:
            if takes == "none":
                yield Problem(token.written, "it takes no value")
            elif "=" in arg and "." not in arg.split("=", 1)[0]:
                yield from _choice_problem(token, arg.split("=", 1)[1], flags)
            continue
        if takes == "one":
            if i < len(args) and is_value(args[i]):
                yield from _choice_problem(token, args[i], flags)
                i += 1
            else:
                yield Problem(token.written, "it needs a value (the next entry)")
        elif takes == "optional":
            if i < len(args) and is_value(args[i]):
                i += 1
        elif takes == "many":
            while i < len(args) and is_value(args[i]):
                i += 1


def _choice_problem(token: Token, value: str, flags: VllmFlags) -> Iterator[Problem]:
    assert token.option is not None
    allowed = flags.choices.get(token.option)
    if allowed is not None and value not in allowed:
        yield Problem(token.written, f"{value!r} is not one of {', '.join(allowed)}")


def _unknown(option: str, flags: VllmFlags) -> str:
    reason = f"not a flag of vLLM {flags.version}"
    completions = sorted(f for f in flags.takes if f.startswith(option) and f.startswith("--"))
    if option.startswith("--") and completions:
        return f"{reason}; write flags in full (--{option[2:]} abbreviates {completions[0]})"
    matches = flags.close_matches(option)
    return f"{reason} (did you mean {' or '.join(matches)}?)" if matches else reason

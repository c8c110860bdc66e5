"""Print, as JSON, every flag the installed vLLM's OpenAI server accepts (run inside the vLLM image).

The operator has no vLLM installed, so it checks ``spec.runtime.extraArgs`` against this list,
committed as ``operator/paitient_operator/builders/vllm_flags.json`` (``make vllm-flags``
regenerates it; ``tests/vllm`` checks it is in sync with the image). Standard library and vLLM
only: the vLLM environment has none of the project's packages.

    python3 vllm_flags.py > vllm_flags.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import vllm
from vllm.entrypoints.launchers.cli_args import make_arg_parser
from vllm.model_executor.layers.quantization import (
    DEPRECATED_QUANTIZATION_METHODS,
    QUANTIZATION_METHODS,
)
from vllm.utils.argparse_utils import FlexibleArgumentParser


def takes(action: argparse.Action) -> str:
    """How many values a flag consumes: "none", "one", "optional" (0 or 1) or "many" (0+/1+)."""
    nargs = action.nargs
    if nargs == 0:
        return "none"
    if nargs is None or nargs == 1:
        return "one"
    if nargs == argparse.OPTIONAL:
        return "optional"
    return "many"


def flags() -> dict[str, Any]:
    parser = make_arg_parser(FlexibleArgumentParser())
    found: dict[str, dict[str, str]] = {}
    for action in parser._actions:  # argparse has no public list of its actions
        if isinstance(action, argparse._HelpAction):
            continue
        for option in action.option_strings:
            # dest ties a short alias (-tp) to its long flag (--tensor-parallel-size).
            found[option] = {"takes": takes(action), "dest": action.dest}
            if action.choices is not None:
                found[option]["choices"] = sorted(map(str, action.choices))
    # --quantization has no argparse choices: vLLM checks it against this list when it loads.
    methods = [m for m in QUANTIZATION_METHODS if m not in DEPRECATED_QUANTIZATION_METHODS]
    return {
        "vllmVersion": vllm.__version__,
        "quantizationMethods": methods,
        "flags": dict(sorted(found.items())),
    }


def render(data: dict[str, Any]) -> str:
    """Stable JSON with one flag per line, so a version bump reads as a short diff."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in data["flags"].items()]
    head = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in data.items() if k != "flags"]
    return "{\n" + "\n".join(head) + '\n "flags": {\n' + ",\n".join(lines) + "\n }\n}\n"


if __name__ == "__main__":
    sys.stdout.write(render(flags()))

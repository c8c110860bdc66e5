"""Run inside the vLLM environment: parse argument lists with vLLM's own server parser.

Standard library and vLLM only. Reads ``{"name": [args...]}`` as JSON from the file named by its
first argument and prints
``{"name": null | "why vLLM refused"}``: parsed by ``make_arg_parser``, checked by
``validate_parsed_serve_args``, turned into ``EngineArgs`` and, for ``--quantization``, checked
against the methods this vLLM knows (which it does only when it loads the model).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
from vllm.utils.argparse_utils import FlexibleArgumentParser


def refusal(args: list[str]) -> str | None:
    parser = make_arg_parser(FlexibleArgumentParser())
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parsed = parser.parse_args(args)
        validate_parsed_serve_args(parsed)
        AsyncEngineArgs.from_cli_args(parsed)
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue() else "exit"
    except Exception as exc:  # vLLM's own validation
        return f"{type(exc).__name__}: {exc}"
    if parsed.quantization is not None and parsed.quantization not in QUANTIZATION_METHODS:
        return f"unknown quantization {parsed.quantization}"
    return None


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        cases = json.load(source)
    json.dump({name: refusal(args) for name, args in cases.items()}, sys.stdout)

"""A settings model's command line: argparse built from its ``Flag`` markers, returning only the
flags given, so a flag ranks above the environment and a flag left out hides nothing."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from paitient_common.settings.model import Leaf, leaves, put, snake_upper


def _help(leaf: Leaf) -> str:
    text = leaf.field.description or ""
    if leaf.env:
        text += f" [env {leaf.env}]"
    return text.replace("%", "%%")  # argparse formats help with %


def parse_flags(
    model: type[BaseModel], argv: Sequence[str], *, prog: str, description: str | None = None
) -> dict[str, Any]:
    """The flags in ``argv``, keyed like the model. A bad or unknown flag exits 2 (argparse)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    by_dest: dict[str, Leaf] = {}
    for leaf in leaves(model):
        if leaf.flag is None:
            continue
        options: dict[str, Any] = {"dest": leaf.key, "default": argparse.SUPPRESS}
        if leaf.field.annotation is bool:
            options["action"] = "store_true"
        else:
            options["metavar"] = snake_upper(leaf.path[-1])
        parser.add_argument(leaf.flag, help=_help(leaf), **options)
        by_dest[leaf.key] = leaf
    values: dict[str, Any] = {}
    for dest, value in vars(parser.parse_args(list(argv))).items():
        put(values, by_dest[dest].path, value)
    return values

"""The settings tables of the docs, generated from the models so they cannot drift.

``python -m paitient_common.settings.table docs/configuration.md`` rewrites every table between
``<!-- settings-table: module:Model ... -->`` and ``<!-- end settings-table -->`` (one table per
component, from its models in order); ``--check`` only reports a stale one (exit 1).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from paitient_common.durations import format_duration
from paitient_common.settings.model import Leaf, leaves, shown_default

_BLOCK = re.compile(
    r"(?P<open><!-- settings-table: (?P<models>[^>]*?) -->\n)(?P<table>.*?)"
    r"(?P<close><!-- end settings-table -->)",
    re.S,
)


def _code(text: str | None) -> str:
    return f"`{text}`" if text else "—"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(leaf: Leaf) -> str:
    shown = shown_default(leaf)
    if shown is not None:
        return _cell(shown.text)
    value = leaf.default()
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    if isinstance(value, (list, tuple, dict)):
        return _cell(f"`{json.dumps(value, default=str)}`")
    return f"`{value}`"


def markdown_table(models: Sequence[type[BaseModel]]) -> str:
    """One table of every setting of ``models``: flag, environment variable, file key (when a
    model is read from a file), default, meaning."""
    with_file = any(getattr(m, "read_from_file", False) for m in models)
    header = ["flag", "environment variable", *(["file key"] if with_file else []), "default"]
    lines = ["| " + " | ".join([*header, "meaning"]) + " |", "|---" * (len(header) + 1) + "|"]
    for model in models:
        file_keys = bool(getattr(model, "read_from_file", False))
        for leaf in leaves(model):
            cells = [_code(leaf.flag), _code(leaf.env)]
            if with_file:
                cells.append(_code(leaf.key) if file_keys else "—")
            cells += [_default(leaf), _cell(leaf.field.description or "")]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _model(spec: str) -> type[BaseModel]:
    module, _, name = spec.partition(":")
    model: Any = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{spec} is not a settings model")
    return model


def render(text: str) -> str:
    """``text`` with every settings table regenerated from the models its marker names."""

    def table(match: re.Match[str]) -> str:
        models = [_model(spec) for spec in match["models"].split()]
        return match["open"] + markdown_table(models) + match["close"]

    return _BLOCK.sub(table, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paitient_common.settings.table")
    parser.add_argument("paths", nargs="+", type=Path, help="Markdown files with settings tables")
    parser.add_argument("--check", action="store_true", help="only report stale tables")
    args = parser.parse_args(argv)
    stale = []
    for path in args.paths:
        text = path.read_text(encoding="utf-8")
        new = render(text)
        if new == text:
            continue
        if args.check:
            stale.append(str(path))
        else:
            path.write_text(new, encoding="utf-8")
    if stale:
        print(
            f"stale settings tables in {', '.join(stale)}: run {parser.prog} PATH", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

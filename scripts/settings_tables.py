"""Write the settings tables of docs/configuration.md from the components' settings models.

Every table between ``<!-- settings-table: module:Model ... -->`` and ``<!-- end settings-table
-->`` is regenerated from the models the marker names, in order (``paitient_common.settings``
renders one). ``--check`` only reports a stale table (exit 1); ``tests/unit/test_configuration.py``
runs it. A script, not a module of ``paitient_common``: it imports the components' models, and
common imports nothing of theirs.

    .venv/bin/python scripts/settings_tables.py docs/configuration.md
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from paitient_common.settings.table import markdown_table

_BLOCK = re.compile(
    r"(?P<open><!-- settings-table: (?P<models>[^>]*?) -->\n)(?P<table>.*?)"
    r"(?P<close><!-- end settings-table -->)",
    re.S,
)


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
    parser = argparse.ArgumentParser(prog="scripts/settings_tables.py", description=__doc__)
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

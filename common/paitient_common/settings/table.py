"""A settings table in Markdown, generated from the models so the docs cannot drift
(``scripts/settings_tables.py`` writes them into docs/configuration.md; pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel

from paitient_common.durations import format_duration
from paitient_common.settings.model import Leaf, leaves, shown_default


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

"""A settings model's ValidationError as one message a person can act on: each bad setting by
name, its flag, environment variable or file key, the value and where it came from (never a
secret's value), and what was expected (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from paitient_common.settings.model import MISSING, Leaf, get, leaves

_SHOWN_CHARACTERS = 200


class SettingsError(ValueError):
    """Settings a component cannot start with; the message says which and why."""


@dataclass(frozen=True)
class Layer:
    """The values one place gave, keyed like the model (aliases, a mapping per section)."""

    kind: Literal["flag", "environment", "file"]
    values: Mapping[str, Any]
    file: str = ""  # the file's path, for kind "file"


def explain(error: ValidationError, model: type[BaseModel], layers: Sequence[Layer]) -> str:
    settings = leaves(model)
    read_from_file = bool(getattr(model, "read_from_file", False))
    problems = [
        _problem(e, settings, layers, read_from_file) for e in error.errors(include_url=False)
    ]
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} invalid settings:\n" + "\n".join(f"  {p}" for p in problems)


def _problem(
    e: ErrorDetails, settings: list[Leaf], layers: Sequence[Layer], read_from_file: bool
) -> str:
    loc = tuple(str(part) for part in e["loc"])
    name = ".".join(loc)
    expected = e["msg"].removeprefix("Value error, ")
    leaf = next((s for s in sorted(settings, key=lambda s: -len(s.path)) if _within(loc, s)), None)
    if leaf is None and e["type"] == "extra_forbidden":
        return _unknown(loc, settings, layers)
    if leaf is None:  # a rule across settings (a section's or the model's validator)
        return f"{name or 'settings'}: {expected}"
    if e["type"] == "missing":  # inside a map's value (a tier): its input is the whole entry
        return f"{name}: missing in {_origin(leaf, layers)}: {expected}"
    value = e["input"]
    if leaf.secret:
        shown = "a secret value (not shown)"
        if isinstance(value, str) and value:
            expected = expected.replace(value, "***")
    else:
        shown = _shown(value)
    return (
        f"{name}: {shown} from {_origin(leaf, layers)}: {expected} "
        f"(set by {' or '.join(_names(leaf, read_from_file))})"
    )


def _within(loc: tuple[str, ...], leaf: Leaf) -> bool:
    return loc[: len(leaf.path)] == leaf.path


def _names(leaf: Leaf, read_from_file: bool) -> list[str]:
    names = [f"flag {leaf.flag}"] if leaf.flag else []
    names += [f"environment variable {leaf.env}"] if leaf.env else []
    names += [f"file key {leaf.key}"] if read_from_file else []
    return names


def _origin(leaf: Leaf, layers: Sequence[Layer]) -> str:
    """Where the value that failed came from: the first layer that has it."""
    for layer in layers:
        if get(layer.values, leaf.path) is MISSING:
            continue
        if layer.kind == "flag":
            return f"flag {leaf.flag}"
        if layer.kind == "environment":
            return f"environment variable {leaf.env}"
        return f"file key {leaf.key} in {layer.file}"
    return "the default"


def _shown(value: Any) -> str:
    text = repr(dict(value) if isinstance(value, Mapping) else value)
    if len(text) > _SHOWN_CHARACTERS:
        return text[: _SHOWN_CHARACTERS - 3] + "..."
    return text


def _unknown(loc: tuple[str, ...], settings: list[Leaf], layers: Sequence[Layer]) -> str:
    name = ".".join(loc)
    where = next((layer for layer in layers if get(layer.values, loc) is not MISSING), None)
    place = f" in {where.file}" if where is not None and where.file else ""
    close = difflib.get_close_matches(name, [s.key for s in settings], n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name}: not a setting{place}{hint}"

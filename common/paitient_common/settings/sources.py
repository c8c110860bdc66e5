"""The layers a settings model is built from, each a plain mapping keyed like the model (pure
but for reading the file): the environment and a YAML file. Flags are in ``flags``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_origin

import yaml
from pydantic import BaseModel

from paitient_common.settings.errors import SettingsError
from paitient_common.settings.model import leaves, put, union_members


def _json_or_raw(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # validation then says what was expected, naming the variable


def _kind(annotation: Any) -> Any:
    """``list`` for ``list[str]`` and ``list[str] | None``, ``dict`` likewise, else the type."""
    members = [m for m in union_members(annotation) if m is not type(None)]
    kind = members[0] if len(members) == 1 else annotation
    return get_origin(kind) or kind


def env_value(raw: str, annotation: Any) -> Any:
    """One variable's text as the setting's value: a list comma-separated or JSON, a map JSON,
    anything else as text for pydantic to convert."""
    origin = _kind(annotation)
    if origin is list:
        if raw.lstrip().startswith("["):
            return _json_or_raw(raw)
        return [item.strip() for item in raw.split(",") if item.strip()]
    if origin is dict:
        value = _json_or_raw(raw)
        # Read-only, so pydantic-settings replaces a lower layer's map whole rather than merging
        # key by key, which is right only for sections: one variable is one whole value.
        return MappingProxyType(value) if isinstance(value, dict) else value
    return raw


def env_values(model: type[BaseModel], env: Mapping[str, str]) -> dict[str, Any]:
    """Each setting from its environment variable; an empty variable counts as unset."""
    values: dict[str, Any] = {}
    for leaf in leaves(model):
        raw = env.get(leaf.env, "") if leaf.env else ""
        if raw.strip():
            put(values, leaf.path, env_value(raw, leaf.field.annotation))
    return values


def file_values(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path`` (empty: ``{}``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"configuration file {path}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        # The problem and its place only: the snippet yaml would quote may hold any value.
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SettingsError(
            f"configuration file {path} is not valid YAML: {e.problem}{where}"
        ) from None
    except yaml.YAMLError:
        raise SettingsError(f"configuration file {path} is not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"configuration file {path} must be a YAML mapping of settings, not a "
            f"{type(data).__name__}"
        )
    return data

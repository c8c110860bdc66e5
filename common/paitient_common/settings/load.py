"""Build a settings model from its layers: flag > environment variable > file > default."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import InitSettingsSource

from paitient_common.settings.errors import Layer, SettingsError, explain
from paitient_common.settings.flags import parse_flags
from paitient_common.settings.model import Settings
from paitient_common.settings.sources import env_values, file_values

S = TypeVar("S", bound=Settings)


def load(
    model: type[S],
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file: str | Path | None = None,
) -> S:
    """``model`` from ``flags`` (keyed like the model), its environment variables in ``env``
    (default ``os.environ``) and the YAML ``file``, each ranking above the next and all above the
    defaults. Raises ``SettingsError`` with a message naming every bad setting."""
    env = os.environ if env is None else env
    layers = [Layer("flag", flags or {}), Layer("environment", env_values(model, env))]
    if file:
        layers.append(Layer("file", file_values(file), str(file)))
    # pydantic-settings merges the layers in this order, the first that has a key winning;
    # sections merge key by key.
    sources = tuple(InitSettingsSource(model, dict(layer.values)) for layer in layers)
    # BaseSettings' own keyword arguments are hidden from mypy by pydantic's dataclass_transform.
    build: Any = model
    try:
        settings: S = build(_build_sources=(sources, {}))
    except ValidationError as e:
        raise SettingsError(explain(e, model, layers)) from None
    try:
        settings.startup_check()
    except ValueError as e:
        raise SettingsError(str(e)) from None
    return settings


def load_or_exit(
    model: type[S],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str | None = None,
    env: Mapping[str, str] | None = None,
    file: str | Path | None = None,
) -> S:
    """``load`` with the flags in ``argv`` (default ``sys.argv[1:]``). A bad setting prints
    ``prog: message`` on stderr and exits 2, as argparse does for a bad flag: no traceback."""
    args = sys.argv[1:] if argv is None else argv
    flags = parse_flags(model, args, prog=prog, description=description)
    try:
        return load(model, flags=flags, env=env, file=file)
    except SettingsError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        raise SystemExit(2) from None

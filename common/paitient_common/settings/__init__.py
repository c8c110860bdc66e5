"""Every component's settings, one way: a pydantic-settings model per component, built from
command-line flags, environment variables and (the operator) a YAML file, in that order of
precedence above the defaults; a bad value stops the component with one message naming it."""

from __future__ import annotations

from paitient_common.settings.errors import SettingsError
from paitient_common.settings.load import load, load_or_exit
from paitient_common.settings.model import Env, Flag, Leaf, Settings, ShownDefault, leaves

__all__ = [
    "Env",
    "Flag",
    "Leaf",
    "Settings",
    "SettingsError",
    "ShownDefault",
    "leaves",
    "load",
    "load_or_exit",
]

"""What a settings model is: the base every component's settings derive from, and the names a
setting has outside Python (flag, environment variable, file key), walked from the model."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


@dataclass(frozen=True)
class Flag:
    """The command-line flag of a setting (``--port``); a bool setting's flag takes no value."""

    name: str


@dataclass(frozen=True)
class Env:
    """The environment variable of a setting whose name does not follow the rule (the model's
    ``env_prefix`` and the setting's path in SNAKE_CASE); ``None``: no environment variable."""

    name: str | None


@dataclass(frozen=True)
class ShownDefault:
    """The default as the settings table shows it, where the value itself would not read well."""

    text: str


class Settings(BaseSettings):
    """Base of every component's settings, which ``paitient_common.settings.load`` builds from
    flags, the environment and a file. Built directly in code, a model takes only its arguments
    and defaults: nothing is read behind a test's back."""

    model_config = SettingsConfigDict(
        env_prefix="PAITIENT_",
        case_sensitive=True,
        extra="forbid",  # a misspelt key should stop the component, not vanish
        frozen=True,
    )
    # True for a model that is also the schema of a configuration file (the operator's).
    read_from_file: ClassVar[bool] = False

    def startup_check(self) -> None:
        """What must hold of the machine for these settings to work (a file exists): run by
        ``load`` after validation, skipped by a model built in code. Raises ``ValueError``
        naming the setting, never with a secret's value."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True)
class Leaf:
    """One setting of a model: its path (the aliases pydantic's error locations and the file use,
    one per nested section), its field, and its flag and environment variable if any."""

    path: tuple[str, ...]
    field: FieldInfo
    env: str | None
    flag: str | None

    @property
    def key(self) -> str:
        """The dotted path: the file key of a model read from a file (``tls.renewBefore``)."""
        return ".".join(self.path)

    @property
    def secret(self) -> bool:
        """Typed as a secret: its value is never shown, not even in an error."""
        return any(
            kind in (SecretStr, SecretBytes) for kind in union_members(self.field.annotation)
        )

    def default(self) -> Any:
        return self.field.get_default(call_default_factory=True)


def section(annotation: Any) -> type[BaseModel] | None:
    """The model of a nested section (its keys are settings of their own), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def union_members(annotation: Any) -> tuple[Any, ...]:
    """``(A, B)`` for ``A | B``, else ``(annotation,)``; ``Annotated`` metadata dropped."""
    members = (
        get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    )
    return tuple(get_args(m)[0] if get_origin(m) is Annotated else m for m in members)


def snake_upper(name: str) -> str:
    """``certManager`` and ``cert_manager`` -> ``CERT_MANAGER``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def _marker(field: FieldInfo, kind: type[Any]) -> Any:
    return next((m for m in field.metadata if isinstance(m, kind)), None)


def leaves(model: type[BaseModel]) -> list[Leaf]:
    """Every setting of ``model``, sections walked, in declaration order; those a settings model
    takes from a shared mixin (``CacheSettings``) after its own (pure)."""
    prefix = str(model.model_config.get("env_prefix") or "")
    return list(_walk(model, prefix, ()))


def _from_mixin(model: type[BaseModel], name: str) -> bool:
    declared = next((c for c in model.__mro__ if name in vars(c).get("__annotations__", {})), None)
    return declared is not None and not issubclass(declared, Settings)


def _walk(model: type[BaseModel], prefix: str, path: tuple[str, ...]) -> Iterator[Leaf]:
    fields = sorted(model.model_fields.items(), key=lambda item: _from_mixin(model, item[0]))
    for name, field in fields:
        here = (*path, field.alias or name)
        nested = section(field.annotation)
        if nested is not None:
            yield from _walk(nested, prefix, here)
            continue
        env = _marker(field, Env)
        flag = _marker(field, Flag)
        yield Leaf(
            path=here,
            field=field,
            env=env.name if env else prefix + "_".join(snake_upper(p) for p in here),
            flag=flag.name if flag else None,
        )


def shown_default(leaf: Leaf) -> ShownDefault | None:
    marker = _marker(leaf.field, ShownDefault)
    return marker if isinstance(marker, ShownDefault) else None


MISSING: Any = object()


def put(values: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``path`` in nested mappings keyed like a model, making the sections on the way."""
    for key in path[:-1]:
        values = values.setdefault(key, {})
    values[path[-1]] = value


def get(values: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested mappings keyed like a model, else ``MISSING``."""
    node: Any = values
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return MISSING
        node = node[key]
    return node

"""paitient_common.settings: one precedence (flag > environment variable > file > default), one
naming rule, one error message naming the bad setting and never a secret's value."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from paitient_common.cache_settings import CacheSettings
from paitient_common.settings import Env, Flag, Settings, SettingsError, leaves, load, load_or_exit
from paitient_common.settings.table import markdown_table

PASSWORD = "hunter2-correct-horse"  # the value a test looks for in messages


def _refuse_weak(value: SecretStr) -> SecretStr:
    # A validator that quotes its input, as a careless one would: the message must not show it.
    if "horse" in value.get_secret_value():
        raise ValueError(f"{value.get_secret_value()!r} is in a dictionary")
    return value


class Database(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="db.local", description="Database host.")
    password: Annotated[SecretStr, AfterValidator(_refuse_weak)] = Field(
        default=SecretStr("default-secret"), min_length=8, description="Database password."
    )


class Example(Settings):
    """A component's settings: flags, a renamed and an unnamed variable, a section, a list, a map."""

    read_from_file: ClassVar[bool] = True

    port: Annotated[int, Flag("--port"), Env("EXAMPLE_PORT")] = Field(
        default=80, ge=1, le=65535, description="Listen port."
    )
    name: Annotated[str, Flag("--name")] = Field(default="default", description="A name.")
    debug: Annotated[bool, Flag("--debug"), Env(None)] = Field(default=False, description="Debug.")
    tags: list[str] = Field(default_factory=list, description="Tags.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    database: Database = Field(default_factory=Database, description="The database.")
    token: SecretStr | None = Field(default=None, description="An API token.")

    @model_validator(mode="after")
    def _not_both(self) -> Example:
        if self.debug and self.port == 443:
            raise ValueError("debug is never served on 443")
        return self


def test_every_setting_has_its_names_by_rule_or_marker() -> None:
    names = {leaf.key: (leaf.flag, leaf.env) for leaf in leaves(Example)}
    assert names == {
        "port": ("--port", "EXAMPLE_PORT"),
        "name": ("--name", "PAITIENT_NAME"),
        "debug": ("--debug", None),
        "tags": (None, "PAITIENT_TAGS"),
        "labels": (None, "PAITIENT_LABELS"),
        "database.host": (None, "PAITIENT_DATABASE_HOST"),
        "database.password": (None, "PAITIENT_DATABASE_PASSWORD"),
        "token": (None, "PAITIENT_TOKEN"),
    }
    assert [leaf.secret for leaf in leaves(Example)] == [False] * 6 + [True, True]


def test_precedence_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text(
        "port: 1001\nname: from-file\ntags: [file]\nlabels: {a: file, b: file}\n"
        "database: {host: file.db}\n"
    )
    env = {
        "EXAMPLE_PORT": "1002",
        "PAITIENT_NAME": "from-env",
        "PAITIENT_LABELS": '{"a": "env"}',
        "PAITIENT_DATABASE_PASSWORD": "from-env-secret",
        "PAITIENT_DEBUG": "true",  # no such variable: debug is a flag only
    }
    settings = load_or_exit(Example, ["--port", "1003"], prog="t", env=env, file=file)
    assert settings.port == 1003  # flag over environment over file
    assert settings.name == "from-env"  # environment over file
    assert settings.tags == ["file"]  # file over default
    assert settings.labels == {"a": "env"}  # a map from one variable replaces the file's whole
    assert settings.database.host == "file.db"  # sections merge key by key
    assert settings.database.password.get_secret_value() == "from-env-secret"
    assert settings.debug is False
    assert settings.token is None  # default
    assert load_or_exit(Example, ["--debug"], prog="t", env={}).debug is True
    # Built in code, a model reads nothing from the process's environment.
    assert Example(name="x") == load(Example, flags={"name": "x"}, env={})


def test_environment_lists_and_empty_variables() -> None:
    assert load(Example, env={"PAITIENT_TAGS": "a, b,,c "}).tags == ["a", "b", "c"]
    assert load(Example, env={"PAITIENT_TAGS": '["a,b", "c"]'}).tags == ["a,b", "c"]
    assert load(Example, env={"PAITIENT_NAME": "", "EXAMPLE_PORT": "  "}) == Example()


def test_a_bad_value_names_the_setting_its_names_the_value_and_what_was_expected() -> None:
    with pytest.raises(SettingsError) as error:
        load(Example, env={"EXAMPLE_PORT": "eighty"})
    assert str(error.value) == (
        "port: 'eighty' from environment variable EXAMPLE_PORT: Input should be a valid "
        "integer, unable to parse string as an integer (set by flag --port or environment "
        "variable EXAMPLE_PORT or file key port)"
    )
    with pytest.raises(SettingsError) as error:
        load(Example, flags={"port": "0"}, env={"EXAMPLE_PORT": "8080"})
    assert str(error.value).startswith("port: '0' from flag --port: Input should be greater than")


def test_bad_values_from_a_file_and_several_at_once(tmp_path: Path) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text("database: {host: [1]}\nlabels: {a: 1}\nprot: 1\n")
    with pytest.raises(SettingsError) as error:
        load(Example, env={"PAITIENT_TAGS": "[broken"}, file=file)
    assert str(error.value).splitlines() == [
        "4 invalid settings:",
        "  tags: '[broken' from environment variable PAITIENT_TAGS: Input should be a valid list "
        "(set by environment variable PAITIENT_TAGS or file key tags)",
        f"  labels.a: 1 from file key labels in {file}: Input should be a valid string (set by "
        "environment variable PAITIENT_LABELS or file key labels)",
        f"  database.host: [1] from file key database.host in {file}: Input should be a valid "
        "string (set by environment variable PAITIENT_DATABASE_HOST or file key database.host)",
        f"  prot: not a setting in {file}; did you mean port?",
    ]


def test_a_rule_across_settings_is_named_by_its_message() -> None:
    with pytest.raises(SettingsError) as error:
        load(Example, flags={"debug": True, "port": "443"}, env={})
    assert str(error.value) == "settings: debug is never served on 443"


@pytest.mark.parametrize("source", ["environment", "file"])
def test_a_secret_typed_value_never_appears_in_the_error(source: str, tmp_path: Path) -> None:
    env: dict[str, str] = {}
    file = None
    if source == "environment":
        env = {"PAITIENT_DATABASE_PASSWORD": PASSWORD}
    else:
        file = tmp_path / "settings.yaml"
        file.write_text(f"database: {{password: {PASSWORD}}}\n")
    with pytest.raises(SettingsError) as error:
        load(Example, env=env, file=file)
    message = str(error.value)
    assert PASSWORD not in message
    assert "horse" not in message
    assert "database.password: a secret value (not shown) from " in message
    assert "'***' is in a dictionary" in message


class GuardedDatabase(Database):
    @model_validator(mode="before")
    @classmethod
    def _known_host(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("host") == "forbidden.db":
            raise ValueError("that host is not allowed")
        return data


class Guarded(Example):
    database: GuardedDatabase = Field(default_factory=GuardedDatabase, description="Guarded.")


def test_a_rule_over_a_section_never_shows_the_section_and_its_secrets() -> None:
    env = {"PAITIENT_DATABASE_HOST": "forbidden.db", "PAITIENT_DATABASE_PASSWORD": PASSWORD}
    with pytest.raises(SettingsError) as error:
        load(Guarded, env=env)
    assert str(error.value) == "database: that host is not allowed"


def test_load_or_exit_prints_one_message_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_or_exit(Example, ["--port", "x"], prog="example", env={})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("example: port: 'x' from flag --port: Input should be a valid integer")
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as exited:  # an unknown flag: argparse's own exit 2
        load_or_exit(Example, ["--tags", "a"], prog="example", env={})
    assert exited.value.code == 2


def test_a_missing_or_malformed_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"settings.yaml: No such file or directory"):
        load(Example, env={}, file=tmp_path / "settings.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"token: {PASSWORD}\n  port: [\n")
    with pytest.raises(SettingsError, match=r"is not valid YAML: .* at line 2") as error:
        load(Example, env={}, file=bad)
    assert PASSWORD not in str(error.value)


class Watching(CacheSettings, Settings):
    pass


def test_the_caches_watch_settings() -> None:
    assert load(Watching, env={}).watch == Watching().watch
    settings = load(
        Watching,
        env={
            "PAITIENT_WATCH_TIMEOUT_SECONDS": "2-4",
            "PAITIENT_CACHE_STALE_SECONDS": "9",
            "PAITIENT_WATCH_READ_GRACE_SECONDS": "0.5",
        },
    ).watch
    assert (settings.timeout_min, settings.timeout_max, settings.stale_after) == (2, 4, 9.0)
    assert settings.read_grace == 0.5
    assert load(Watching, env={"PAITIENT_WATCH_TIMEOUT_SECONDS": "7"}).watch.timeout_max == 7
    for bad in ("0", "5-2", "soon", "3-"):
        with pytest.raises(SettingsError, match="PAITIENT_WATCH_TIMEOUT_SECONDS: expected N or"):
            load(Watching, env={"PAITIENT_WATCH_TIMEOUT_SECONDS": bad})


def test_the_table_row_of_each_setting() -> None:
    rows = markdown_table([Example]).splitlines()
    assert rows[0] == "| flag | environment variable | file key | default | meaning |"
    assert "| `--port` | `EXAMPLE_PORT` | `port` | `80` | Listen port. |" in rows
    assert "| `--debug` | — | `debug` | `false` | Debug. |" in rows
    assert (
        "| — | `PAITIENT_DATABASE_HOST` | `database.host` | `db.local` | Database host. |" in rows
    )
    assert "| — | `PAITIENT_TOKEN` | `token` | unset | An API token. |" in rows
    password = next(r for r in rows if "`database.password`" in r)
    assert "default-secret" not in password
    assert (
        markdown_table([Watching])
        .splitlines()[2]
        .startswith("| — | `PAITIENT_WATCH_TIMEOUT_SECONDS` | `15-25` |")
    )

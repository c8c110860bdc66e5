"""The three components' settings as a whole: every one documented in docs/configuration.md (the
tables generated from the models), and each entry point refusing a bad value with one message and
exit status 2 before it starts anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from paitient_api.settings import FrontDoorSettings
from paitient_common.settings import Settings, leaves
from paitient_gateway.config import GatewayConfig
from paitient_operator.config import OperatorCommand, OperatorConfig

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "configuration.md"
MODELS: list[type[Settings]] = [OperatorCommand, OperatorConfig, GatewayConfig, FrontDoorSettings]


def test_the_settings_tables_are_generated_from_the_models() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/settings_tables.py", "--check", "docs/configuration.md"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr  # "run scripts/settings_tables.py PATH"
    text = DOC.read_text(encoding="utf-8")
    for model in MODELS:  # each has its table
        assert f"{model.__module__}:{model.__name__}" in text


def test_a_stale_table_is_reported(tmp_path: Path) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text(
        DOC.read_text(encoding="utf-8").replace("`PAITIENT_GATEWAY_HOST`", "`GATEWAY_HOST`")
    )
    script = [sys.executable, str(REPO / "scripts" / "settings_tables.py")]
    check = subprocess.run([*script, "--check", str(doc)], capture_output=True, text=True)
    assert check.returncode == 1
    assert "stale settings tables" in check.stderr
    assert subprocess.run([*script, str(doc)], timeout=60).returncode == 0  # rewritten
    assert doc.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_setting_is_described_and_named_once(model: type[Settings]) -> None:
    settings = leaves(model)
    assert all(s.field.description for s in settings)
    names = [n for s in settings for n in (s.env, s.flag) if n is not None]
    assert len(names) == len(set(names)), "two settings of one component share a name"


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (
            ["paitient_gateway", "--insecure-plaintext", "--port", "x"],
            {},
            "paitient-gateway: port: 'x' from flag --port: Input should be a valid integer",
        ),
        (
            ["paitient_api.main"],
            {"PAITIENT_API_PORT": "tcp://10.0.0.7:8080"},
            "paitient-api: port: 'tcp://10.0.0.7:8080' from environment variable "
            "PAITIENT_API_PORT: Input should be a valid integer",
        ),
        (
            ["paitient_operator.main"],
            {"PAITIENT_TLS_RENEW_BEFORE": "31d"},
            "paitient-operator: tls: tls.renewBefore must be shorter than tls.certificateLifetime",
        ),
    ],
    ids=["gateway", "front door", "operator"],
)
def test_an_entry_point_refuses_a_bad_value_with_one_message_and_status_2(
    argv: list[str], env: dict[str, str], expected: str
) -> None:
    module, *args = argv
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""

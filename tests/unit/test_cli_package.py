"""The admin CLI installs on its own: `pip install ./cli` into a fresh virtualenv brings the CLI
and only what it needs (the Kubernetes client, pydantic and their own dependencies), and
`paitient` runs there."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What the services need and the CLI must not drag in.
NOT_NEEDED = {
    "kopf",
    "redis",
    "prometheus-client",
    "cryptography",
    "uvloop",
    "paitient-secure-model-service",
}


@pytest.mark.timeout(600)
def test_pip_install_cli_in_a_fresh_virtualenv_gives_a_working_paitient(tmp_path: Path) -> None:
    # pip builds in place: a copy keeps build/ and *.egg-info out of the checkout; the CLI's
    # package takes paitient_common from ../common, as in the repository.
    for part in ("cli", "common"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "./cli"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=540,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    installed = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"paitient-cli", "kubernetes", "pydantic"} <= installed
    assert installed & NOT_NEEDED == set()

    help_text = subprocess.run(
        [env_dir / "bin" / "paitient", "--help"], capture_output=True, text=True, check=False
    )  # fmt: skip
    assert help_text.returncode == 0, help_text.stderr
    assert "tenants" in help_text.stdout and "keys" in help_text.stdout
    # Every command's modules import: a missing cluster is the CLI's own one-line error.
    missing = subprocess.run(
        [env_dir / "bin" / "paitient", "--kubeconfig", str(tmp_path / "none"), "tenants", "list"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no cluster configured"), missing.stderr

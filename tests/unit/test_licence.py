"""One licence, Apache-2.0: its full text at the root (and beside each SDK, which ships it), and
the same SPDX identifier in every package manifest and the chart."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["LICENSE", "sdk/python/LICENSE", "sdk/js/LICENSE"])
def test_the_full_apache_2_text(name: str) -> None:
    text = (REPO / name).read_text()
    assert text == (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def test_every_manifest_says_apache_2() -> None:
    for manifest in ("pyproject.toml", "sdk/python/pyproject.toml"):
        project = tomllib.loads((REPO / manifest).read_text())["project"]
        assert project["license"] == "Apache-2.0", manifest
        assert project["license-files"] == ["LICENSE"], manifest
    package = json.loads((REPO / "sdk/js/package.json").read_text())
    lock = json.loads((REPO / "sdk/js/package-lock.json").read_text())
    assert package["license"] == lock["packages"][""]["license"] == "Apache-2.0"
    chart = yaml.safe_load((REPO / "charts/paitient/Chart.yaml").read_text())
    assert chart["annotations"]["artifacthub.io/license"] == "Apache-2.0"

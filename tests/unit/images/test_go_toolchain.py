"""The Go toolchain finder's pure part: reading ``go version``."""

from __future__ import annotations

from paitient_images.go_toolchain import parse_go_version


def test_go_version_parsing() -> None:
    assert parse_go_version("go version go1.26.8 linux/amd64") == (1, 26)
    assert parse_go_version("go version go1.9 linux/amd64") == (1, 9)
    assert parse_go_version("garbage") is None

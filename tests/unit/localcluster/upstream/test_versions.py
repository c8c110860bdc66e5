"""The binary cache: outside the repository, keyed by version, a stamp per component."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from paitient_localcluster.upstream import versions
from paitient_localcluster.upstream.versions import (
    CERT_MANAGER_CONTROLLER,
    COMPONENTS,
    KUBERNETES,
    KUBERNETES_NODE,
    NODE,
    cache_dir,
)


def test_binaries_are_cached_outside_the_repo_keyed_by_version(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PAITIENT_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    assert KUBERNETES.directory == tmp_path / f"kubernetes-{KUBERNETES.version}"
    assert {c.directory for c in COMPONENTS} == {
        tmp_path / (f"{c.key}-{c.version}" + (f"-{c.source_digest()}" if c.own_source else ""))
        for c in COMPONENTS
    }
    assert len({c.directory for c in COMPONENTS}) == len(COMPONENTS), "each has its own folder"


def test_a_wrapper_of_our_own_is_rebuilt_when_its_source_changes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """cert-manager's wrapper is a program of ours: an edit to it (a missing issuer import, once)
    must not be served from the build before it."""
    monkeypatch.setattr(versions, "GOMOD_DIR", tmp_path)
    (tmp_path / "certmanager").mkdir()
    main = tmp_path / "certmanager" / "main.go"
    main.write_text("package main\n")
    before = CERT_MANAGER_CONTROLLER.directory
    main.write_text('package main\n\nimport _ "example.com/issuer/ca"\n')
    assert CERT_MANAGER_CONTROLLER.directory != before
    assert KUBERNETES.directory == replace(KUBERNETES).directory  # upstream-only: by version


def test_a_binary_added_to_a_component_invalidates_its_stamp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAITIENT_CACHE_DIR", str(tmp_path))
    component = KUBERNETES_NODE
    component.directory.mkdir(parents=True)
    for name in component.binaries:
        component.binary(name).write_text("")
    component.stamp.write_text(component.stamp_text())
    assert component.is_built()
    grown = replace(component, binaries=(*component.binaries, "kubectl"))
    assert not grown.is_built()
    assert not replace(component, version="v9.9.9").is_built()
    assert {c.key for c in NODE} == {"kubernetes-node", "coredns", "kube-router"}

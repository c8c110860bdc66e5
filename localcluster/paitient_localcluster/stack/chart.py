"""The product's Helm chart on the local cluster: ``helm`` itself and the values the local
cluster needs (``make up`` installs the chart with them; so does the chart's integration test)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from paitient_common.kubeapi import Kube
from paitient_images import image

from ..errors import ClusterError

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "paitient"


def tool(name: str) -> Path:
    """kubectl or helm: the repository's (``make setup`` installs them), else the PATH's."""
    local = REPO / ".local" / "bin" / name
    found = local if local.is_file() else shutil.which(name)
    if not found:
        raise ClusterError(f"{name} is missing: run `make setup`")
    return Path(found)


def helm(kubeconfig: Path, *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(tool("helm")), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise ClusterError(f"helm {' '.join(args[:2])}: {done.stdout}{done.stderr}".strip())
    return done.stdout


def api_server_values(kube: Kube) -> list[str]:
    """The front door's NetworkPolicy must let it reach the API server's own address and port
    (the `kubernetes` Service's endpoints; a policy sees the port after the Service)."""
    slice_ = kube.get("discovery.k8s.io/v1", "EndpointSlice", "kubernetes", namespace="default")
    if slice_ is None:
        raise ClusterError("the cluster has no EndpointSlice for the kubernetes Service")
    ips = sorted({a for e in slice_["endpoints"] for a in e["addresses"]})
    ports = sorted({p["port"] for p in slice_["ports"]})
    return [
        "--set", f"frontDoor.networkPolicy.apiServer.cidrs={{{','.join(f'{i}/32' for i in ips)}}}",
        "--set", f"frontDoor.networkPolicy.apiServer.ports={{{','.join(map(str, ports))}}}",
    ]  # fmt: skip


def image_digest_values() -> list[str]:
    """The built images' digests as pod annotations: the chart's image references are those
    ``make images`` builds, whose tag stays while their content changes, so a rebuilt image
    rolls its pods on the next ``helm upgrade``."""
    values = []
    for component, name in (("operator", "paitient-operator"), ("frontDoor", "paitient-api")):
        key = f"{component}.podAnnotations.paitient\\.ai/image-digest"
        values += ["--set-string", f"{key}={image(name).manifest_digest}"]
    return values


def local_values(kube: Kube) -> list[str]:
    """Everything the local cluster needs besides the chart's defaults."""
    return [
        *api_server_values(kube), *image_digest_values(),
        # The front door creates ModelDeployments that name no class: the local encrypted one.
        "--set", "operator.config.defaultStorageClass=encrypted-local",
        # The cluster installs the CRDs itself at start (the session's own operator needs them
        # before any release), so a release must not take them over.
        "--set", "crds.enabled=false",
        # The host reaches the front door through a port-forward or a relay on 127.0.0.1: the
        # certificate the operator issues it names that too.
        "--set", "frontDoor.tls.dnsNames={127.0.0.1,localhost}",
    ]  # fmt: skip

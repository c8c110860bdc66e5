"""Install the generated CRDs into a cluster and wait until they are served.

Helm installs them in production (``charts/``); this is for the local cluster, tests and
benchmarks: ``python -m paitient_common.resources.install`` against the current kubeconfig.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from paitient_common.kubeapi import Kube

CRDS = Path(__file__).resolve().parents[3] / "crds"
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def install_crds(kube: Kube, directory: Path = CRDS, timeout: float = 30) -> list[str]:
    """Create or update every CRD in ``directory``; return their names once all are served."""
    names = []
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        if kube.get(*CRD, name) is None:
            kube.create(crd)
        else:
            kube.patch(
                *CRD,
                name,
                {"metadata": {"labels": crd["metadata"].get("labels", {})}, "spec": crd["spec"]},
            )
        names.append(name)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            conds = ((kube.get(*CRD, name) or {}).get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                pending.discard(name)
        time.sleep(0.2)
    if pending:
        raise TimeoutError(
            f"CRDs not established after {timeout:.0f} s: {', '.join(sorted(pending))}"
        )
    return names


if __name__ == "__main__":
    for installed in install_crds(Kube.from_kubeconfig()):
        print(f"installed {installed}")

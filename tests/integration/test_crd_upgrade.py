"""The chart's CRDs follow the chart (templates, not crds/): on the local cluster, the cluster's
CRDs are handed to a release (the one-time step docs/helm.md#crds gives for clusters that had
chart 0.1.0), then `helm upgrade` to a second chart version that adds a field to UsageReport and
changes a description: the API server serves the new schema (the new field is kept, where it was
pruned before), and `helm uninstall` leaves the CRDs and every object of them in place.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from paitient_common.kubeapi import Kube
from paitient_common.resources.install import CRD, CRDS, install_crds
from paitient_localcluster.host.processes import Managed
from paitient_localcluster.stack.chart import CHART
from paitient_localcluster.stack.lifecycle import FRONT_DOOR_RELAY
from tests.integration.chart_release import HELM, KUBECTL, run

UR = ("paitient.ai/v1alpha1", "UsageReport")
HELM_METADATA = {
    "labels": ["app.kubernetes.io/managed-by"],
    "annotations": ["meta.helm.sh/release-name", "meta.helm.sh/release-namespace"],
}
CHART_ADDED = {
    "labels": ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
               "app.kubernetes.io/version", "helm.sh/chart"],
    "annotations": ["helm.sh/resource-policy", "argocd.argoproj.io/sync-wave"],
}  # fmt: skip


def _names() -> list[str]:
    return [yaml.safe_load(p.read_text())["metadata"]["name"] for p in sorted(CRDS.glob("*.yaml"))]


def _next_version(tmp_path: Path) -> Path:
    """The chart as its next version would be: 0.2.1, UsageReport's spec with a `note` field and
    a new description."""
    chart = tmp_path / "paitient"
    shutil.copytree(CHART, chart)
    meta = chart / "Chart.yaml"
    meta.write_text(meta.read_text().replace("\nversion: 0.2.0\n", "\nversion: 0.2.1\n"))
    path = chart / "files" / "crds" / "usagereports.paitient.ai.yaml"
    crd = yaml.safe_load(path.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["description"] = "What one gateway pod has counted (chart 0.2.1)."
    spec["properties"]["note"] = {"type": "string", "description": "Added in chart 0.2.1."}
    path.write_text(yaml.safe_dump(crd, sort_keys=True))
    return chart


def _report(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": UR[0], "kind": UR[1],
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"pod": name, "note": "kept once the schema has it"},
    }  # fmt: skip
    kube.create(body)
    return kube.get(*UR, name, namespace=namespace) or {}


@pytest.fixture
def namespace(kubeconfig: Path, kube: Kube) -> Iterator[str]:
    if Managed(FRONT_DOOR_RELAY, kubeconfig.parent).read_pid() is not None:
        pytest.skip("`make up`'s release runs on this cluster")
    name = f"paitient-crds-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        kube.delete("v1", "Namespace", name)


def test_helm_upgrade_upgrades_the_crds_and_uninstall_keeps_them(
    kubeconfig: Path, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    install_crds(kube)  # as the cluster (or chart 0.1.0's crds/) left them: not Helm's
    release = f"c{uuid.uuid4().hex[:6]}"
    flags = ("--namespace", namespace, "--set", "operator.replicas=0",
             "--set", "frontDoor.enabled=false", "--set", "adminRole.create=false")  # fmt: skip
    try:
        # The one-time hand-over of existing CRDs to the release (docs/helm.md#crds).
        for name in _names():
            run(KUBECTL, "label", "crd", name, "app.kubernetes.io/managed-by=Helm",
                "--overwrite", kubeconfig=kubeconfig)  # fmt: skip
            run(KUBECTL, "annotate", "crd", name, f"meta.helm.sh/release-name={release}",
                f"meta.helm.sh/release-namespace={namespace}", "--overwrite",
                kubeconfig=kubeconfig)  # fmt: skip
        # Helm 4 applies server-side: fields another client wrote (here the cluster's own
        # install) are taken over only when forced.
        run(HELM, "install", release, str(CHART), *flags, "--wait", "--force-conflicts",
            kubeconfig=kubeconfig)  # fmt: skip
        before = kube.get(*CRD, "usagereports.paitient.ai") or {}
        assert before["metadata"]["labels"]["helm.sh/chart"] == "paitient-0.2.0"
        assert before["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        pruned = _report(kube, namespace, "before")
        assert "note" not in pruned["spec"], "0.2.0's schema has no such field: pruned"

        run(HELM, "upgrade", release, str(_next_version(tmp_path)), *flags, "--wait",
            "--force-conflicts", kubeconfig=kubeconfig)  # fmt: skip
        after = kube.get(*CRD, "usagereports.paitient.ai") or {}
        assert after["metadata"]["labels"]["helm.sh/chart"] == "paitient-0.2.1"
        spec = after["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        assert spec["description"] == "What one gateway pod has counted (chart 0.2.1)."
        assert spec["properties"]["note"]["type"] == "string"
        kept = _report(kube, namespace, "after")
        assert kept["spec"]["note"] == "kept once the schema has it"

        run(HELM, "uninstall", release, "--namespace", namespace, "--wait", kubeconfig=kubeconfig)
        for name in _names():
            assert kube.get(*CRD, name) is not None, f"{name} kept on uninstall"
        assert kube.get(*UR, "before", namespace=namespace) is not None
        assert kube.get(*UR, "after", namespace=namespace) is not None
    finally:
        run(HELM, "uninstall", release, "--namespace", namespace, kubeconfig=kubeconfig,
            check=False)  # fmt: skip
        # Back to the cluster's own CRDs: the generated schema, no release's marks.
        install_crds(kube)
        strip = {key: dict.fromkeys(HELM_METADATA[key] + CHART_ADDED[key]) for key in HELM_METADATA}
        for name in _names():
            kube.patch(*CRD, name, {"metadata": strip})

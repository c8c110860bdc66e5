"""`kubectl apply -f examples/` on a fresh cluster, as docs/operator.md says: the namespace it
needs comes first from the examples themselves and the API server accepts every ModelDeployment;
`kubectl get md` names the source of every model, a pvc:// one included."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from paitient_common.kubeapi import Kube
from paitient_common.resources.install import install_crds
from tests.integration.node_pods import KUBECTL, REPO, kubectl
from tests.integration.waiting import wait_for
from tests.prerequisites import missing

NAMESPACE = "tenant-demo"  # examples/00-namespace.yaml


@pytest.fixture
def examples_namespace_free(kube: Kube) -> Iterator[None]:
    if kube.get("v1", "Namespace", NAMESPACE) is not None:
        missing(f"namespace {NAMESPACE} exists on this cluster already")
    install_crds(kube)
    try:
        yield
    finally:
        kube.delete("v1", "Namespace", NAMESPACE)
        # Gone, not only Terminating: the docs test applies the same examples.
        wait_for(lambda: kube.get("v1", "Namespace", NAMESPACE) is None, timeout=180,
                 what=f"namespace {NAMESPACE} deleted")  # fmt: skip


def test_kubectl_apply_examples_works_and_get_md_names_each_source(
    kubeconfig: Path, kube: Kube, examples_namespace_free: None
) -> None:
    applied = kubectl(kubeconfig, "apply", "-f", str(REPO / "examples"))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[0] == f"namespace/{NAMESPACE} created"
    labels = kube.get("v1", "Namespace", NAMESPACE)["metadata"]["labels"]  # type: ignore[index]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    uri = "pvc://tiny-model/tiny-llama"
    pvc_model = (
        "apiVersion: paitient.ai/v1alpha1\nkind: ModelDeployment\n"
        f"metadata: {{name: from-a-claim, namespace: {NAMESPACE}}}\n"
        f"spec: {{model: {{uri: '{uri}'}}, useGpu: false, resources: {{cpu: '1', memory: 6Gi}}}}\n"
    )
    made = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
        input=pvc_model, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    table = kubectl(kubeconfig, "get", "md", "-n", NAMESPACE)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "MODEL", "URI", "GPUS"]
    by_name = {row.split()[0]: row for row in rows}
    assert set(by_name) == {"huatuo-o1", "huatuo-o1-cpu", "huatuo-o1-elastic", "from-a-claim"}
    assert "ZimaBlueAI/HuatuoGPT-o1-8B" in by_name["huatuo-o1"]
    assert uri in by_name["from-a-claim"]

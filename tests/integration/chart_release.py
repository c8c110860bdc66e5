"""The Helm chart installed on the local cluster for a test: a release in a fresh namespace that
enforces Pod Security ``restricted``, its pods Ready; uninstalled and its namespaces deleted
afterwards. While it runs, the session's own operator is paused: two would fight."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from paitient_common.kubeapi import Kube
from paitient_common.resources.install import install_crds
from paitient_localcluster.host.processes import Managed
from paitient_localcluster.simulated.sa_kubeconfig import service_account_user
from paitient_localcluster.stack.chart import CHART, local_values
from paitient_localcluster.stack.lifecycle import FRONT_DOOR_RELAY
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / ".local" / "bin" / "helm"
KUBECTL = REPO / ".local" / "bin" / "kubectl"
COMPONENTS = ("operator", "api")


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    kubeconfig: Path

    @property
    def operator(self) -> str:
        return f"{self.name}-paitient-operator"

    @property
    def api(self) -> str:
        return f"{self.name}-paitient-api"

    def user(self, service_account: str) -> str:
        return service_account_user(self.namespace, service_account)

    def selector(self, component: str) -> str:
        return f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"


def run(tool: Path, *args: str, kubeconfig: Path, check: bool = True, timeout: float = 120) -> str:
    if not tool.is_file():
        pytest.fail(f"{tool} is missing: run `make setup`")
    result = subprocess.run(
        [str(tool), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"{tool.name} {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ready_pod(kube: Kube, release: Release, component: str) -> dict[str, Any] | None:
    pods = kube.list(
        "v1", "Pod", namespace=release.namespace, label_selector=release.selector(component)
    )
    return next((p for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp")),
                None)  # fmt: skip


@contextlib.contextmanager
def installed_release(
    kubeconfig: Path, kube: Kube, prefix: str, values: tuple[str, ...] = ()
) -> Iterator[Release]:
    """The chart installed with the local cluster's values (and ``values``, helm flags)."""
    if Managed(FRONT_DOOR_RELAY, kubeconfig.parent).read_pid() is not None:
        pytest.skip("`make up`'s release runs on this cluster; two operators would fight")
    install_crds(kube)  # the cluster's own: the release leaves them alone (crds.enabled=false)
    suffix = uuid.uuid4().hex[:6]
    release = Release(f"{prefix}{suffix}", f"paitient-{prefix}-{suffix}", kubeconfig)
    kube.create({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": release.namespace,
                     "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    })  # fmt: skip
    with OperatorProcess.others_paused():
        try:
            run(
                HELM, "install", release.name, str(CHART), "--namespace", release.namespace,
                *local_values(kube), *values, kubeconfig=kubeconfig,
            )  # fmt: skip
            for component in COMPONENTS:
                wait_for(lambda c=component: ready_pod(kube, release, c), timeout=180,
                         what=f"the chart's {component} pod Ready")  # fmt: skip
            yield release
        finally:
            run(HELM, "uninstall", release.name, "--namespace", release.namespace,
                "--wait", kubeconfig=kubeconfig, check=False)  # fmt: skip
            kube.delete("v1", "Namespace", release.namespace)
            kube.delete("v1", "Namespace", f"{release.namespace}-ca")  # the operator's, not Helm's

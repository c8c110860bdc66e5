"""The Helm chart installed on the local cluster's real node for a test module: a release in a
fresh namespace that enforces Pod Security ``restricted``, with the images ``make images``
built, its pods Ready; uninstalled and its namespaces deleted afterwards. While it runs, the
session's own operator is paused (two operators would fight over the same objects)."""

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
from tests.prerequisites import missing

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / ".local" / "bin" / "helm"
KUBECTL = REPO / ".local" / "bin" / "kubectl"
COMPONENTS = ("operator", "api", "store")


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

    @property
    def store(self) -> str:
        return f"{self.name}-paitient-store"

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


def ready_pods(kube: Kube, release: Release, component: str) -> list[dict[str, Any]]:
    """The component's pods that are Ready and not being deleted."""
    pods = kube.list(
        "v1", "Pod", namespace=release.namespace, label_selector=release.selector(component)
    )
    return [p for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp")]


def ready_pod(kube: Kube, release: Release, component: str) -> dict[str, Any] | None:
    return next(iter(ready_pods(kube, release, component)), None)


def wait_release_ready(kube: Kube, release: Release, timeout: float = 180) -> None:
    """Every replica of the operator, the front door and the store Ready; the store only when
    the chart runs one (``store.enabled``, no external URL). ``helm install`` returns once it
    made every object, so a StatefulSet absent now is one the release does not have."""
    for component, kind, name in (
        ("operator", "Deployment", release.operator),
        ("api", "Deployment", release.api),
        ("store", "StatefulSet", release.store),
    ):
        workload = kube.get("apps/v1", kind, name, namespace=release.namespace)
        if workload is None and component == "store":
            continue
        wanted = int((workload or {}).get("spec", {}).get("replicas", 1))

        def enough(component: str = component, wanted: int = wanted) -> bool:
            return len(ready_pods(kube, release, component)) >= wanted

        wait_for(enough, timeout=timeout, what=f"the chart's {component} pods Ready")


@contextlib.contextmanager
def installed_release(
    kubeconfig: Path, kube: Kube, prefix: str, values: tuple[str, ...] = ()
) -> Iterator[Release]:
    """The chart installed with the local cluster's values (and ``values``, helm flags)."""
    if Managed(FRONT_DOOR_RELAY, kubeconfig.parent).read_pid() is not None:
        missing(
            "`make up`'s release runs on this cluster (two operators would fight): `make down` first"
        )
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
            wait_release_ready(kube, release)
            yield release
        finally:
            run(HELM, "uninstall", release.name, "--namespace", release.namespace,
                "--wait", kubeconfig=kubeconfig, check=False)  # fmt: skip
            kube.delete("v1", "Namespace", release.namespace)
            kube.delete("v1", "Namespace", f"{release.namespace}-ca")  # the operator's, not Helm's

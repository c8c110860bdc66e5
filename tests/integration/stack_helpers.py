"""Helpers for tests and benchmarks against the whole stack: a tenant with a key, the data plane,
an operator of one's own."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.resources.install import install_crds
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.simulated.dataplane import MD_LABEL
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def tenant_ready(kube: Kube, name: str) -> bool:
    conditions = ((kube.get("paitient.ai/v1alpha1", "Tenant", name) or {}).get("status") or {}).get(
        "conditions"
    ) or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def make_tenant(kube: Kube, tier: str = "standard") -> dict[str, str]:
    name = f"fd{uuid.uuid4().hex[:8]}"
    client_id = f"{name}-clinic"
    admin.create_tenant(kube, name, client_id, tier, None, {tier})
    wait_for(lambda: tenant_ready(kube, name), what="tenant Ready")
    wait_for(
        lambda: kube.get("v1", "Secret", f"paitient-api-keys-{name}", namespace="paitient-system"),
        what="key secret",
    )
    key = admin.create_key(kube, client_id, None, "", "paitient-system")[0]
    return {"name": name, "client_id": client_id, "key": key, "namespace": f"tenant-{name}"}


def why_not_ready(kube: Kube, namespace: str, name: str, routes: Path) -> str:
    """For a failure message: the ModelDeployment's pods as the API holds them (phase, node,
    conditions) and the data plane's last lines that name it."""
    pods = kube.list("v1", "Pod", namespace=namespace, label_selector=f"{MD_LABEL}={name}")
    lines = [
        f"pod {p['metadata']['name']}: {(p.get('status') or {}).get('phase')} on "
        f"{(p.get('spec') or {}).get('nodeName')}; "
        + ", ".join(
            f"{c['type']}={c['status']}" + (f" ({c['reason']})" if c.get("reason") else "")
            for c in (p.get("status") or {}).get("conditions") or []
        )
        for p in pods
    ] or ["no pod"]
    log = routes.parent / "dataplane.log"
    if log.is_file():
        named = [line for line in log.read_text(errors="replace").splitlines() if name in line]
        lines += [f"data plane: {line}" for line in named[-10:]]
    return "; ".join(lines)


def start_data_plane(kubeconfig: Path, work: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """The local data plane (a gateway and a vLLM stand-in per ready model Deployment), and the
    routes file it keeps (``namespace/name -> gateway URL``). The caller terminates it."""
    routes = work / "routes.json"
    plane = subprocess.Popen(
        [sys.executable, "-m", "paitient_localcluster.simulated.dataplane", "--kubeconfig", str(kubeconfig),
         "--routes", str(routes), "--state-dir", str(work / "dataplane"),
         "--netns", str(LocalCluster(log=lambda _m: None).namespaces.netns_path)],
        cwd=REPO, stdout=(work / "dataplane.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return plane, routes


@contextlib.contextmanager
def operator_and_tenant(work: Path) -> Iterator[tuple[Kube, Path, dict[str, str]]]:
    """For benchmarks: the local cluster (started if none runs, and then stopped again), the CRDs,
    an operator of its own (logging to ``work``) and a fresh tenant, deleted afterwards."""
    cluster = LocalCluster(log=lambda _m: None)
    reused = cluster.is_healthy()
    kubeconfig = cluster.up()
    kube = Kube.from_kubeconfig(str(kubeconfig))
    install_crds(kube)
    own = kubeconfig.parent / "operator.kubeconfig"
    operator = OperatorProcess(
        own if own.is_file() else kubeconfig,
        work / "operator.log",
        env={"PAITIENT_DEFAULT_STORAGE_CLASS": "encrypted-local"},
    )
    tenant: dict[str, str] | None = None
    try:
        operator.start()
        tenant = make_tenant(kube)
        yield kube, kubeconfig, tenant
    finally:
        if tenant is not None:
            admin.delete_tenant(kube, tenant["name"], force=True)
        operator.stop()
        if not reused:
            cluster.down(quiet=True)

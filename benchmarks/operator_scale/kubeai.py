"""KubeAI's controller beside ours: the same burst of its ``Model`` resources on the same kind of
cluster, with the same simulated GPUs.

KubeAI (github.com/kubeai-project/kubeai, formerly substratusai/kubeai; Apache-2.0) runs vLLM
models as pods. Its source is not served by the Go module proxy, and this repository holds none
of it, no binary built from it and no recipe to build it: the benchmark runs a controller
binary built beforehand from commit ``PIN`` (the last one, 2025-10-15, chart 0.22.1) and reads
that commit's Helm chart for its CRD, RBAC and configuration. By default both are looked for in
``$PAITIENT_BENCH_CACHE`` (``~/.cache/paitient-bench``) under ``kubeai-<PIN>/``: ``src/`` (the
source tree at the pin) and ``bin/kubeai`` (its controller, ``./cmd`` built by KubeAI's own
instructions with the Go dependencies of its go.sum); ``--kubeai-src`` / ``--kubeai-bin`` point
elsewhere. Without them the part is skipped with that message.

How it runs here, as its chart runs it (``helm template`` of the pinned chart, its optional
Open WebUI dependency dropped): its CRD, ServiceAccounts, Role and RoleBinding, ConfigMaps and
Secrets in namespace ``kubeai``; the controller as that ServiceAccount (a token minted as the
kubelet would), inside the cluster's network namespace (it serves its OpenAI API on :8000 of
every interface, which must not be the host's), with the chart's ``system.yaml`` plus a
resource profile that puts each model on one simulated H100 (the GPU taint tolerated, the
product selected), and its metrics and health endpoints on loopback. Models: ``minReplicas: 1``
(KubeAI scales from zero by default; this makes it create a pod for each, as our operator
makes a Deployment), which KWOK runs and makes Ready at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from paitient_common.kubeapi import Kube, KubeError
from paitient_common.resources.install import install_crds
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane import audit
from paitient_localcluster.controlplane.kubeconfig import write_kubeconfig
from paitient_localcluster.simulated.nodes import GPU_PRODUCT, GPU_TAINT
from paitient_localcluster.simulated.sa_kubeconfig import (
    mint_token,
    service_account_kubeconfig,
    service_account_user,
)
from paitient_localcluster.stack.chart import tool

from .figures import Burst, CpuMeter, Requests, rss_mib
from .ours import SETTLE_S, cluster_pids, create_all
from .progress import State, Waiter, kubeai_model_state

PIN = "f442a2cd620cc0c903d0d0a5145bb70fb050503b"
CHART_VERSION = "0.22.1"
NAMESPACE = "kubeai"
ACCOUNT = "kubeai"  # the chart's ServiceAccount for the controller (release name "kubeai")
PROFILE = "bench-h100"
PROCESS = "kubeai"
MODEL = ("kubeai.org/v1", "Model")
MODEL_PATH = f"/apis/kubeai.org/v1/namespaces/{NAMESPACE}/models"
# What the chart renders that the benchmark does not use: the controller's own Deployment (it
# runs as a process here), its Service and the optional ones.
NOT_APPLIED = frozenset(
    {"Deployment", "Service", "Ingress", "PodMonitor", "SecurityContextConstraints"}
)


class Unavailable(RuntimeError):
    """KubeAI's binary or source is not here; the message says what to provide."""


def cache_root() -> Path:
    override = os.environ.get("PAITIENT_BENCH_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "paitient-bench"


@dataclass(frozen=True)
class KubeAI:
    source: Path
    binary: Path

    @classmethod
    def locate(cls, source: Path | None, binary: Path | None) -> KubeAI:
        pinned = cache_root() / f"kubeai-{PIN}"
        found = cls(source or pinned / "src", binary or pinned / "bin" / "kubeai")
        chart = found.source / "charts" / "kubeai" / "Chart.yaml"
        problems = []
        if not chart.is_file():
            problems.append(f"no KubeAI source tree at {found.source} (no {chart})")
        elif yaml.safe_load(chart.read_text()).get("version") != CHART_VERSION:
            problems.append(f"{chart} is not chart {CHART_VERSION} of commit {PIN}")
        if not os.access(found.binary, os.X_OK):
            problems.append(f"no KubeAI controller binary at {found.binary}")
        if problems:
            raise Unavailable(
                "; ".join(problems) + f". The benchmark runs KubeAI's controller built from "
                f"github.com/kubeai-project/kubeai at commit {PIN}: put that commit's source "
                f"tree at {pinned / 'src'} and its controller (./cmd) at "
                f"{pinned / 'bin' / 'kubeai'}, or pass --kubeai-src and --kubeai-bin."
            )
        return found

    def render(self, work: Path) -> list[dict[str, Any]]:
        """The pinned chart's objects for the benchmark (``helm template``, no cluster)."""
        chart = work / "kubeai-chart"
        shutil.copytree(self.source / "charts" / "kubeai", chart)
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        meta.pop("dependencies", None)  # Open WebUI, off by default; its repository is remote
        (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
        values = work / "kubeai-values.yaml"
        values.write_text(yaml.safe_dump(bench_values()))
        done = subprocess.run(
            [str(tool("helm")), "template", "kubeai", str(chart), "--namespace", NAMESPACE,
             "-f", str(values)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise Unavailable(f"helm template of KubeAI's chart failed: {done.stderr.strip()}")
        return [d for d in yaml.safe_load_all(done.stdout) if d]


def bench_values() -> dict[str, Any]:
    """Chart values: one resource profile of one simulated H100 per model (pure)."""
    gpu = "nvidia.com/gpu"
    return {
        "resourceProfiles": {
            PROFILE: {
                "imageName": "nvidia-gpu",
                "requests": {gpu: "1", "cpu": "100m", "memory": "1Gi"},
                "limits": {gpu: "1"},
                "nodeSelector": {"nvidia.com/gpu.product": GPU_PRODUCT},
                "tolerations": [
                    {"key": GPU_TAINT["key"], "operator": "Exists", "effect": GPU_TAINT["effect"]}
                ],
            }
        }
    }


def model_manifest(i: int) -> dict[str, Any]:
    """The i-th benchmark Model: the same model as our deployments, one replica kept up."""
    return {
        "apiVersion": MODEL[0],
        "kind": MODEL[1],
        "metadata": {"name": f"model-{i:04d}", "namespace": NAMESPACE},
        "spec": {
            "url": "hf://ZimaBlueAI/HuatuoGPT-o1-8B",
            "engine": "VLLM",
            "features": ["TextGeneration"],
            "resourceProfile": f"{PROFILE}:1",
            "minReplicas": 1,
            "maxReplicas": 1,
        },
    }


def install(kube: Kube, objects: list[dict[str, Any]], work: Path) -> str:
    """Apply the rendered objects (CRD first, served before the rest); return the controller's
    ``system.yaml``."""
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    crds = work / "kubeai-crds"
    crds.mkdir()
    for n, obj in enumerate(o for o in objects if o["kind"] == "CustomResourceDefinition"):
        (crds / f"{n}.yaml").write_text(yaml.safe_dump(obj))
    install_crds(kube, crds)
    config = ""
    for obj in objects:
        if obj["kind"] in NOT_APPLIED | {"CustomResourceDefinition"}:
            continue
        obj.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        if obj["kind"] == "ConfigMap" and "system.yaml" in (obj.get("data") or {}):
            config = obj["data"]["system.yaml"]
        kube.request("POST", _collection(obj), body=obj)
    if not config:
        raise Unavailable("KubeAI's chart rendered no ConfigMap with system.yaml")
    return config


def _collection(obj: dict[str, Any]) -> str:
    group_version, kind = obj["apiVersion"], obj["kind"]
    plural = {"Role": "roles", "RoleBinding": "rolebindings"}.get(kind) or kind.lower() + "s"
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    return f"{base}/namespaces/{obj['metadata']['namespace']}/{plural}"


def start(cluster: LocalCluster, kube: Kube, kubeai: KubeAI, config: str, work: Path) -> int:
    """Run the controller inside the cluster's namespaces as its ServiceAccount; its pid."""
    system = yaml.safe_load(config)
    system |= {"metricsAddr": "127.0.0.1:8080", "healthAddress": "127.0.0.1:8081"}
    config_path = work / "kubeai-system.yaml"
    config_path.write_text(yaml.safe_dump(system))
    token = mint_token(kube, NAMESPACE, ACCOUNT, 24 * 3600)
    admin_path = cluster.kubeconfig
    doc = service_account_kubeconfig(
        yaml.safe_load(admin_path.read_text()), admin_path, token.token, NAMESPACE, ACCOUNT
    )
    kubeconfig = work / "kubeai.kubeconfig"
    write_kubeconfig(kubeconfig, doc)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "KUBECONFIG": str(kubeconfig),
        "CONFIG_PATH": str(config_path),
        "POD_NAMESPACE": NAMESPACE,
    }
    enter = cluster.namespaces.enter(work)
    argv = enter.argv([str(kubeai.binary), "--zap-devel=false", "--zap-log-level=info"])
    return cluster.process(PROCESS).start(argv, env=env, exe=str(kubeai.binary))


def model_states(kube: Kube) -> list[State]:
    try:
        items = kube.request("GET", MODEL_PATH).get("items", [])
    except KubeError:
        return []
    return [kubeai_model_state(m) for m in items]


def run(
    cluster: LocalCluster, kube: Kube, kubeai: KubeAI, work: Path, count: int, stall: float,
    timeout: float, out: Callable[[str], None],
) -> Burst:  # fmt: skip
    """Install, start, create ``count`` Models at once, wait until each has its pod Ready."""
    config = install(kube, kubeai.render(work), work)
    pid = start(cluster, kube, kubeai, config, work)
    out(f"[kubeai] controller started (pid {pid}, log {cluster.process(PROCESS).log_file})")
    try:
        time.sleep(3)  # its caches and leader election, as our operator's start-up handlers
        cluster.process(PROCESS).ensure_alive()
        offset = audit.log_size(cluster.layout.audit_log)
        cpu = CpuMeter({"kubeai": pid, **cluster_pids(cluster)}).start()
        started = time.monotonic()
        applied = create_all(
            kube, [model_manifest(i) for i in range(count)], create=_create_model(kube)
        )
        out(f"[kubeai] {count} Models created in {applied:.1f} s")
        waiter = Waiter(
            "kubeai", count, lambda: model_states(kube), stall=stall, timeout=timeout,
            every=15.0, out=out,
        )  # fmt: skip
        wall = waiter.wait(started)
        time.sleep(SETTLE_S)
        events = audit.read_events(cluster.layout.audit_log, offset)
        user = service_account_user(NAMESPACE, ACCOUNT)
        return Burst(
            count, applied, wall, Requests.of(events, [user]), rss_mib={"kubeai": rss_mib(pid)},
            cpu_s=cpu.read(),
        )  # fmt: skip
    finally:
        cluster.process(PROCESS).stop()
        log = cluster.process(PROCESS).log_file
        if log.is_file():
            shutil.copy(log, work / "kubeai.log")


def _create_model(kube: Kube) -> Callable[[dict[str, Any]], object]:
    return lambda model: kube.request("POST", MODEL_PATH, body=model)

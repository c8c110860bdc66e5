"""The local data plane: run each Ready model pod's gateway for real, with the vLLM stand-in.

KWOK only pretends to run containers. For the demo and end-to-end tests the gateway must really
answer, so this process plays the kubelet's part for model pods: for every ModelDeployment whose
Deployment is ready, it starts the gateway with exactly the environment the operator rendered
for the gateway container (read from the Deployment), points its upstream at an OpenAI-protocol
stand-in (vLLM itself needs a GPU), and publishes ``namespace/name -> URL`` in a routes file the
front door reads. Every process listens on 127.0.0.1; all are stopped when this one stops.

    python -m paitient_localcluster.dataplane --kubeconfig K --routes FILE --state-dir DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from paitient_common.kubeapi import Kube

from .processes import free_port, wait_http_ok

REPO = Path(__file__).resolve().parents[2]
MANAGED = "app.kubernetes.io/managed-by=paitient-operator"
GATEWAY_CONTAINER = "gateway"


def gateway_env(deployment: dict[str, Any], pod_name: str) -> dict[str, str]:
    """The gateway container's environment as the operator rendered it (pure); ``fieldRef``
    values are filled in as the kubelet would, secrets are not (the gateway reads none)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    gateway = next(c for c in containers if c["name"] == GATEWAY_CONTAINER)
    env: dict[str, str] = {}
    for item in gateway.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = pod_name
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = deployment["metadata"]["namespace"]
    return env


@dataclass
class ModelPod:
    """The gateway and stand-in of one ModelDeployment."""

    key: str
    url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class DataPlane:
    kube: Kube
    kubeconfig: str
    routes: Path
    state_dir: Path
    pods: dict[str, ModelPod] = field(default_factory=dict)

    def sync(self) -> None:
        ready = {}
        for dep in self.kube.list("apps/v1", "Deployment", label_selector=MANAGED):
            if int(dep.get("status", {}).get("readyReplicas") or 0) > 0:
                ready[f"{dep['metadata']['namespace']}/{dep['metadata']['name']}"] = dep
        for key in sorted(set(self.pods) - set(ready)):
            self.pods.pop(key).stop()
        for key in sorted(set(ready) - set(self.pods)):
            self._start(key, ready[key])
        self._write_routes()

    def _start(self, key: str, deployment: dict[str, Any]) -> None:
        """Start the pod's processes, recording each as soon as it exists, so a stop at any
        moment (SIGTERM mid-start) still stops every one of them."""
        namespace, name = key.split("/")
        env = gateway_env(deployment, pod_name=f"local-{name}")
        standin_port, gateway_port = free_port(), free_port()
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        served = env.get("PAITIENT_SERVED_MODEL_NAME", name)
        pod = ModelPod(key, f"http://127.0.0.1:{gateway_port}")
        self.pods[key] = pod
        standin = self._spawn(
            [sys.executable, "-m", "tests.standins.vllm_standin", "--port", str(standin_port), "--served-model-name", served],
            os.environ.copy(), logs / f"standin-{namespace}-{name}.log",
        )  # fmt: skip
        pod.processes.append(standin)
        gw_env = {**os.environ, **env, "PAITIENT_UPSTREAM_URL": f"http://127.0.0.1:{standin_port}"}
        gateway = self._spawn(
            [
                sys.executable, "-m", "paitient_gateway", "--kubeconfig", self.kubeconfig,
                "--host", "127.0.0.1", "--port", str(gateway_port),
                "--ledger-dir", str(self.state_dir / "ledgers" / namespace / name),
            ],
            gw_env, logs / f"gateway-{namespace}-{name}.log",
        )  # fmt: skip
        pod.processes.insert(0, gateway)
        wait_http_ok(f"{pod.url}/healthz/live", 30)
        print(
            f"[dataplane] {key}: gateway {pod.url} -> stand-in :{standin_port}",
            file=sys.stderr,
            flush=True,
        )

    def _spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    def _write_routes(self) -> None:
        table = {key: pod.url for key, pod in sorted(self.pods.items())}
        tmp = self.routes.with_suffix(".tmp")
        tmp.write_text(json.dumps(table, indent=2))
        tmp.replace(self.routes)  # atomic: the front door never reads half a file

    def stop(self) -> None:
        for pod in self.pods.values():
            pod.stop()
        self.pods.clear()
        with contextlib.suppress(OSError):
            self._write_routes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paitient-dataplane", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--routes", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    plane = DataPlane(
        Kube.from_kubeconfig(args.kubeconfig), args.kubeconfig, args.routes, args.state_dir
    )

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            with contextlib.suppress(Exception):
                plane.sync()
            time.sleep(args.interval)
    finally:
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())

"""The local data plane: run each Ready model pod's gateway for real, with the vLLM stand-in.

KWOK only pretends to run containers. For the demo and end-to-end tests the gateway must really
answer, so this process plays the kubelet's part for model pods: for every ModelDeployment whose
Deployment is ready, it starts the gateway with exactly the environment the operator rendered
for the gateway container (read from the Deployment), points its upstream at an OpenAI-protocol
stand-in (vLLM itself needs a GPU), and publishes ``namespace/name -> URL`` in a routes file the
front door reads. Every process listens on 127.0.0.1; all are stopped when this one stops.

Each gateway talks to the API as its pod's ServiceAccount (the Deployment's
``serviceAccountName``), never with the admin kubeconfig this process is given: like the kubelet,
the data plane mints a token for that account (TokenRequest API) and hands the gateway a
kubeconfig of its own holding only that token (``<state-dir>/kubeconfigs/``, mode 0600). So a
right the operator forgot to grant shows up here as a 403, as it would on a real cluster.

Token lifetime: the gateway reads its kubeconfig once, at start (the Python client keeps a static
token; it re-reads only exec and auth-provider credentials), so rewriting the file would not
reach a running gateway. Tokens are therefore minted for 24 h, and once a pod's token is past
half its life the data plane restarts that pod's processes with a fresh token on the next sync
(the ledger directory, hence the usage counted, is kept).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from paitient_common.kubeapi import Kube

from .kubeconfig import write_kubeconfig
from .processes import free_port, wait_http_ok
from .sa_kubeconfig import (
    ServiceAccountToken,
    mint_token,
    service_account_kubeconfig,
)

REPO = Path(__file__).resolve().parents[2]
MANAGED = "app.kubernetes.io/managed-by=paitient-operator"
GATEWAY_CONTAINER = "gateway"
TOKEN_LIFETIME_SECONDS = 24 * 3600  # see the module docstring: the gateway never re-reads it


def _now() -> datetime:
    return datetime.now(UTC)


def service_account_name(deployment: dict[str, Any]) -> str:
    """The pod's ServiceAccount, ``default`` when the template names none (as Kubernetes does)."""
    return str(deployment["spec"]["template"]["spec"].get("serviceAccountName") or "default")


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
    token: ServiceAccountToken
    kubeconfig: Path
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
        self.kubeconfig.unlink(missing_ok=True)  # the token in it lives on until it expires


@dataclass
class DataPlane:
    kube: Kube
    kubeconfig: str
    routes: Path
    state_dir: Path
    token_lifetime_seconds: int = TOKEN_LIFETIME_SECONDS
    clock: Callable[[], datetime] = _now
    pods: dict[str, ModelPod] = field(default_factory=dict)
    _admin: dict[str, Any] | None = field(default=None, init=False, repr=False)

    def sync(self) -> None:
        ready = {}
        for dep in self.kube.list("apps/v1", "Deployment", label_selector=MANAGED):
            if int(dep.get("status", {}).get("readyReplicas") or 0) > 0:
                ready[f"{dep['metadata']['namespace']}/{dep['metadata']['name']}"] = dep
        now = self.clock()
        renew = {k for k, pod in self.pods.items() if k in ready and pod.token.due_for_renewal(now)}
        for key in sorted((set(self.pods) - set(ready)) | renew):
            self.pods.pop(key).stop()
        failed = []
        for key in sorted(set(ready) - set(self.pods)):
            try:  # one pod that cannot start (no token yet, say) must not hold up the others
                self._start(key, ready[key])
            except Exception as exc:
                failed.append(f"{key}: {type(exc).__name__}: {exc}")
        self._write_routes()
        if failed:
            raise RuntimeError("; ".join(failed))

    def _gateway_kubeconfig(self, namespace: str, name: str, account: str) -> ServiceAccountToken:
        """Mint a token for the pod's ServiceAccount and write the gateway's kubeconfig."""
        if self._admin is None:
            self._admin = yaml.safe_load(Path(self.kubeconfig).read_text())
        token = mint_token(self.kube, namespace, account, self.token_lifetime_seconds, self.clock())
        document = service_account_kubeconfig(
            self._admin, Path(self.kubeconfig), token.token, namespace, account
        )
        write_kubeconfig(self._kubeconfig_path(namespace, name), document)
        return token

    def _kubeconfig_path(self, namespace: str, name: str) -> Path:
        return self.state_dir / "kubeconfigs" / f"{namespace}_{name}.kubeconfig"

    def _start(self, key: str, deployment: dict[str, Any]) -> None:
        """Start the pod's processes, recording each as soon as it exists, so a stop at any
        moment (SIGTERM mid-start) still stops every one of them. The token comes first: if it
        cannot be minted, nothing starts and the next sync tries again."""
        namespace, name = key.split("/")
        token = self._gateway_kubeconfig(namespace, name, service_account_name(deployment))
        env = gateway_env(deployment, pod_name=f"local-{name}")
        standin_port, gateway_port = free_port(), free_port()
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        served = env.get("PAITIENT_SERVED_MODEL_NAME", name)
        kubeconfig = self._kubeconfig_path(namespace, name)
        pod = ModelPod(key, f"http://127.0.0.1:{gateway_port}", token, kubeconfig)
        self.pods[key] = pod
        standin_args = [sys.executable, "-m", "tests.standins.vllm_standin"]
        standin_args += ["--port", str(standin_port), "--served-model-name", served]
        if env.get("PAITIENT_MAX_MODEL_LEN"):  # the spec's context, as vLLM would get it
            standin_args += ["--max-model-len", env["PAITIENT_MAX_MODEL_LEN"]]
        log = logs / f"standin-{namespace}-{name}.log"
        standin = self._spawn(standin_args, os.environ.copy(), log)
        pod.processes.append(standin)
        gw_env = {**os.environ, **env, "PAITIENT_UPSTREAM_URL": f"http://127.0.0.1:{standin_port}"}
        gw_env.pop("KUBECONFIG", None)  # nothing to fall back on but its own kubeconfig
        gateway = self._spawn(
            [
                sys.executable, "-m", "paitient_gateway", "--kubeconfig", str(kubeconfig),
                "--host", "127.0.0.1", "--port", str(gateway_port),
                "--ledger-dir", str(self.state_dir / "ledgers" / namespace / name),
            ],
            gw_env, logs / f"gateway-{namespace}-{name}.log",
        )  # fmt: skip
        pod.processes.insert(0, gateway)
        wait_http_ok(f"{pod.url}/healthz/live", 30)
        print(
            f"[dataplane] {key}: gateway {pod.url} as {token.user} (token until "
            f"{token.expires_at:%Y-%m-%dT%H:%M:%SZ}) -> stand-in :{standin_port}",
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
    last_error = ""
    try:
        while True:
            try:
                plane.sync()
                last_error = ""
            except Exception as exc:  # keep going: the next sync retries; say it once
                error = f"{type(exc).__name__}: {exc}"
                if error != last_error:
                    print(f"[dataplane] sync failed: {error}", file=sys.stderr, flush=True)
                last_error = error
            time.sleep(args.interval)
    finally:
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())

"""The local data plane: run each running model pod's gateway for real, with the vLLM stand-in,
and report the pod Ready only when that gateway answers its readiness probe.

KWOK only pretends to run containers. For the demo and end-to-end tests the gateway must really
answer, so this process plays the kubelet's part for model pods on the simulated nodes: for
every ModelDeployment with a pod KWOK made Running, it starts the gateway with exactly the
environment the operator rendered for the gateway container (read from the Deployment), points
its upstream at an OpenAI-protocol stand-in (vLLM itself needs a GPU), and publishes
``namespace/name -> URL`` in a routes file the front door reads. Every process listens on
127.0.0.1; all are stopped when this one stops.

Readiness, as a kubelet's probe gives it: KWOK leaves a model pod Ready=False
(``kwok_stages.py``); on every sync the data plane probes the gateway's ``/healthz/ready`` and
sets the pod's Ready (and ContainersReady) condition from the answer, after the route is in the
routes file. So the Deployment's ``readyReplicas``, hence the ModelDeployment's Ready condition
and the REST status, say ``ready`` only once a generate sent then reaches a gateway that
answers. Each running pod gets a gateway of its own (named as the pod, with a ledger of its
own), as in a cluster; the replicas of one ModelDeployment share one stand-in. The routes file
lists every replica whose probe answered (``replicas``, each with its pod's name): the front
door's replica picker finds a pod of the deployment's EndpointSlices there (KWOK's pod addresses
lead nowhere), and without one it spreads requests over them, as a Service would.

Each gateway talks to the API as its pod's ServiceAccount (the Deployment's
``serviceAccountName``), never with the admin kubeconfig this process is given: like the kubelet,
the data plane mints a token for that account (TokenRequest API) and hands the gateway a
kubeconfig of its own holding only that token (``<state-dir>/kubeconfigs/``, mode 0600). So a
right the operator forgot to grant shows up here as a 403, as it would on a real cluster.
Environment values from a Secret (``secretKeyRef``: the shared store's password) are read from
that Secret as the kubelet reads them; a pod whose Secret is missing does not start. A store
URL that names a cluster Service (the chart's store on the real node) is reached as the pod
would reach it, through a relay into the node's network namespace (``service_relays.py``): the
gateway dials ``127.0.0.1:<relay port>`` and verifies the store's certificate against the
Service's name.

The Secret volumes of the gateway container (its serving certificate) are written as the
kubelet writes them (``volumes.py``: payload directories swapped in by renaming ``..data``) under
``<state-dir>/volumes/``, and rewritten on every sync when the Secret changed, so a renewed
certificate reaches the running gateway the way it does in a pod. Environment values under a
mount path are pointed at that directory instead. The gateway serves TLS on 127.0.0.1 with a
certificate for its Service name: the routes file gives the front door both, the URL to connect
to and the name to verify (``{"url": "https://127.0.0.1:<port>", "serverName":
"<name>.<namespace>.svc"}``), and each replica's separate metrics port (``gateway.metricsPort``,
the pod's own on a node, here a free one per gateway) as ``"metricsUrl"``.

Token lifetime: the gateway reads its kubeconfig once, at start (the Python client keeps a static
token; it re-reads only exec and auth-provider credentials), so rewriting the file would not
reach a running gateway. Tokens are therefore minted for 24 h, and once a pod's token is past
half its life the data plane restarts that pod's processes with a fresh token on the next sync
(the ledger directory, hence the usage counted, is kept).

    python -m paitient_localcluster.simulated.dataplane --kubeconfig K --routes FILE --state-dir DIR \
        --netns /run/netns/NAME     # the node's network namespace (LocalCluster().namespaces)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from paitient_common.kubeapi import Kube

from ..controlplane.kubeconfig import write_kubeconfig
from ..host.processes import free_port, probe_context, wait_http_ok
from .kwok_stages import MODEL_POD_LABEL
from .sa_kubeconfig import (
    ServiceAccountToken,
    mint_token,
    service_account_kubeconfig,
)
from .service_relays import ServiceRelays, relayed_store_env, store_service
from .volumes import secret_files, write_atomically

REPO = Path(__file__).resolve().parents[3]
MANAGED = "app.kubernetes.io/managed-by=paitient-operator"
MODEL_PODS = f"{MODEL_POD_LABEL[0]}={MODEL_POD_LABEL[1]},{MANAGED}"
MD_LABEL = "paitient.ai/modeldeployment"
SIMULATED_NODES = "paitient.ai/simulated=true"
GATEWAY_CONTAINER = "gateway"
NOT_READY_MESSAGE = "the gateway's readiness probe (/healthz/ready) did not answer 200"
TOKEN_LIFETIME_SECONDS = 24 * 3600  # see the module docstring: the gateway never re-reads it


def _now() -> datetime:
    return datetime.now(UTC)


def service_account_name(deployment: dict[str, Any]) -> str:
    """The pod's ServiceAccount, ``default`` when the template names none (as Kubernetes does)."""
    return str(deployment["spec"]["template"]["spec"].get("serviceAccountName") or "default")


SecretValue = Callable[[str, str], str]  # (Secret name, key) -> value, in the pod's namespace


def gateway_env(
    deployment: dict[str, Any], pod_name: str, secret_value: SecretValue | None = None
) -> dict[str, str]:
    """The gateway container's environment as the operator rendered it; ``fieldRef`` values
    are filled in as the kubelet would, ``secretKeyRef`` ones through ``secret_value``
    (skipped without it)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    gateway = next(c for c in containers if c["name"] == GATEWAY_CONTAINER)
    env: dict[str, str] = {}
    for item in gateway.get("env", []):
        source = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = pod_name
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = deployment["metadata"]["namespace"]
        elif "secretKeyRef" in source and secret_value is not None:
            ref = source["secretKeyRef"]
            env[item["name"]] = secret_value(ref["name"], ref["key"])
    return env


def running_model_pods(
    pods: list[dict[str, Any]], simulated_nodes: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """Model pods KWOK runs, by ``namespace/<ModelDeployment>`` (pure): Running on a simulated
    node and not being deleted."""
    running: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        deployment = (meta.get("labels") or {}).get(MD_LABEL)
        if (
            deployment
            and status.get("phase") == "Running"
            and not meta.get("deletionTimestamp")
            and (pod.get("spec") or {}).get("nodeName") in simulated_nodes
        ):
            running.setdefault(f"{meta['namespace']}/{deployment}", []).append(pod)
    return running


def readiness_patch(pod: dict[str, Any], ready: bool, now: datetime) -> dict[str, Any] | None:
    """The status patch that makes ``pod`` Ready (or not), as a kubelet's probe result would;
    None when it already is. It carries the pod's resourceVersion, so a pod changed meanwhile
    is refused (409) and tried again on the next sync rather than overwritten (pure)."""
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    want = "True" if ready else "False"
    if any(c.get("type") == "Ready" and c.get("status") == want for c in conditions):
        return None
    changed: list[dict[str, Any]] = []
    for kind in ("Ready", "ContainersReady"):
        condition: dict[str, Any] = {
            "type": kind,
            "status": want,
            "lastTransitionTime": f"{now:%Y-%m-%dT%H:%M:%SZ}",
        }
        if not ready:
            condition |= {"reason": "ContainersNotReady", "message": NOT_READY_MESSAGE}
        changed.append(condition)
    kept = [c for c in conditions if c.get("type") not in ("Ready", "ContainersReady")]
    containers = [{**c, "ready": ready} for c in status.get("containerStatuses") or []]
    return {
        "metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]},
        "status": {"conditions": kept + changed, "containerStatuses": containers},
    }


def probe_ready(url: str) -> bool:
    """The gateway's readiness probe, as the operator renders it (``/healthz/ready``), and as a
    kubelet sends it: over HTTPS without verifying the certificate."""
    context = probe_context() if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(f"{url}/healthz/ready", timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass(frozen=True)
class SecretMount:
    """A Secret volume mounted into the gateway container."""

    secret: str
    mount_path: str
    mode: int


def secret_mounts(deployment: dict[str, Any]) -> list[SecretMount]:
    """The gateway container's mounts that are Secret volumes (pure)."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
    gateway = next(c for c in pod["containers"] if c["name"] == GATEWAY_CONTAINER)
    return [
        SecretMount(
            volumes[m["name"]]["secretName"],
            m["mountPath"].rstrip("/"),
            int(volumes[m["name"]].get("defaultMode", 0o644)),
        )
        for m in gateway.get("volumeMounts", [])
        if m["name"] in volumes
    ]


def local_env(env: dict[str, str], directories: dict[str, Path]) -> dict[str, str]:
    """``env`` with values under a mount path moved to that mount's local directory (pure)."""
    moved = dict(env)
    for name, value in env.items():
        for mount_path, local in directories.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                moved[name] = str(local) + value[len(mount_path) :]
    return moved


def _stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Retiring:
    """Gateways told to stop (SIGTERM), as a kubelet stops a deleted pod: they drain (requests
    and streams in progress finish, usage is flushed) while the sync goes on; ``after`` (the
    stand-in, vLLM's place) is stopped only once they have exited, as the model pod's preStop
    hook keeps vLLM until its gateway has drained; whatever still runs at ``deadline`` (the
    pod's grace period) is killed."""

    gateways: list[subprocess.Popen[bytes]]
    after: list[subprocess.Popen[bytes]]
    deadline: float

    def step(self, now: float) -> bool:
        """Move on; True once everything has exited."""
        if now >= self.deadline:
            for proc in (*self.gateways, *self.after):
                if proc.poll() is None:
                    proc.kill()
        if any(g.poll() is None for g in self.gateways):
            return False
        for proc in self.after:
            if proc.poll() is None:
                proc.terminate()
        return all(p.poll() is not None for p in self.after)


@dataclass
class Replica:
    """One pod's gateway."""

    pod: str
    url: str
    process: subprocess.Popen[bytes]
    ready: bool = False
    # Its separate plain metrics port (gateway.metricsPort), when it has one.
    metrics_url: str = ""


@dataclass
class ModelPod:
    """The gateways (one per running pod) and the stand-in of one ModelDeployment."""

    key: str
    token: ServiceAccountToken
    kubeconfig: Path
    server_name: str = ""
    # Secret name -> (local directory, file mode), rewritten when the Secret changes.
    volumes: dict[str, tuple[Path, int]] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)  # the stand-in
    replicas: dict[str, Replica] = field(default_factory=dict)  # by pod name
    standin_url: str = ""
    grace_seconds: float = 30.0  # the pods' terminationGracePeriodSeconds

    @property
    def url(self) -> str:
        """The first replica's URL (where a single route points)."""
        return next(iter(self.replicas.values())).url if self.replicas else ""

    def stop_replica(self, pod: str) -> None:
        replica = self.replicas.pop(pod, None)
        if replica is not None:
            _stop_processes([replica.process])

    def retire_replica(self, pod: str) -> Retiring | None:
        """Its pod is gone: SIGTERM its gateway, which drains (``Retiring``)."""
        replica = self.replicas.pop(pod, None)
        if replica is None:
            return None
        replica.process.terminate()
        return Retiring([replica.process], [], time.monotonic() + self.grace_seconds)

    def retire(self) -> Retiring:
        """Its last pod is gone: every gateway drains, then the stand-in stops."""
        gateways = [r.process for r in self.replicas.values()]
        for proc in gateways:
            if proc.poll() is None:
                proc.terminate()
        self.replicas.clear()
        self.kubeconfig.unlink(missing_ok=True)
        return Retiring(gateways, self.processes, time.monotonic() + self.grace_seconds)

    def stop(self) -> None:
        _stop_processes([r.process for r in self.replicas.values()] + self.processes)
        self.replicas.clear()
        self.kubeconfig.unlink(missing_ok=True)  # the token in it lives on until it expires
        for directory, _mode in self.volumes.values():  # a private key among them
            shutil.rmtree(directory, ignore_errors=True)


@dataclass
class DataPlane:
    kube: Kube
    kubeconfig: str
    routes: Path
    state_dir: Path
    token_lifetime_seconds: int = TOKEN_LIFETIME_SECONDS
    clock: Callable[[], datetime] = _now
    # The node's network namespace, where cluster Services are reached (None: no relays, a
    # Service's name is left to the gateway, which cannot resolve it).
    netns: Path | None = None
    pods: dict[str, ModelPod] = field(default_factory=dict)
    retiring: list[Retiring] = field(default_factory=list)
    _admin: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _relays: ServiceRelays | None = field(default=None, init=False, repr=False)

    def sync(self) -> None:
        simulated = {
            n["metadata"]["name"]
            for n in self.kube.list("v1", "Node", label_selector=SIMULATED_NODES)
        }
        running = running_model_pods(
            self.kube.list("v1", "Pod", label_selector=MODEL_PODS), simulated
        )
        wanted = {}
        for dep in self.kube.list("apps/v1", "Deployment", label_selector=MANAGED):
            key = f"{dep['metadata']['namespace']}/{dep['metadata']['name']}"
            if key in running:
                wanted[key] = dep
        now = self.clock()
        renew = {
            k for k, pod in self.pods.items() if k in wanted and pod.token.due_for_renewal(now)
        }
        now_seconds = time.monotonic()
        self.retiring = [r for r in self.retiring if not r.step(now_seconds)]
        for key in sorted(renew):
            self.pods.pop(key).stop()
        for key in sorted(set(self.pods) - set(wanted)):  # scaled to zero, or deleted
            model = self.pods.pop(key)
            self.retiring.append(model.retire())
            for directory, _mode in model.volumes.values():  # a private key among them
                shutil.rmtree(directory, ignore_errors=True)
        failed = []
        for key, pod in sorted(self.pods.items()):
            try:
                self._write_volumes(key.split("/")[0], pod.volumes)
            except Exception as exc:  # the files stay as they were, as with a kubelet
                failed.append(f"{key}: volumes: {type(exc).__name__}: {exc}")
        for key in sorted(set(wanted) - set(self.pods)):
            try:  # one pod that cannot start (no token yet, say) must not hold up the others
                self._start(key, wanted[key])
            except Exception as exc:
                failed.append(f"{key}: {type(exc).__name__}: {exc}")
        for key, model in sorted(self.pods.items()):
            pods = sorted(p["metadata"]["name"] for p in running.get(key, []))
            for gone in set(model.replicas) - set(pods):
                retiring = model.retire_replica(gone)  # drains while the sync goes on
                if retiring is not None:
                    self.retiring.append(retiring)
            for pod in pods:
                if pod in model.replicas:
                    continue
                try:
                    self._start_replica(model, wanted[key], pod)
                except Exception as exc:
                    failed.append(f"{key}/{pod}: {type(exc).__name__}: {exc}")
        if self._relays is not None:
            failed += self._relays.refresh()
        for model in self.pods.values():  # every probe first: the routes list the ready ones
            for replica in model.replicas.values():
                replica.ready = probe_ready(replica.url)
        self._write_routes()  # before any pod turns Ready: the route exists first
        failed += self._report_readiness(running, now)
        if failed:
            raise RuntimeError("; ".join(failed))

    def _report_readiness(
        self, running: dict[str, list[dict[str, Any]]], now: datetime
    ) -> list[str]:
        """Set each running pod's Ready condition from its gateway's probe; the failures."""
        failed = []
        for key, pods in sorted(running.items()):
            model = self.pods.get(key)
            for pod in pods:
                replica = model.replicas.get(pod["metadata"]["name"]) if model else None
                ready = replica is not None and replica.ready
                patch = readiness_patch(pod, ready, now)
                if patch is None:
                    continue
                meta = pod["metadata"]
                try:
                    self.kube.patch(
                        "v1", "Pod", meta["name"], patch, namespace=meta["namespace"],
                        subresource="status",
                    )  # fmt: skip
                except Exception as exc:  # changed meanwhile (409), say: the next sync retries
                    failed.append(f"{key}: readiness of {meta['name']}: {type(exc).__name__}")
        return failed

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

    def _write_volumes(self, namespace: str, volumes: dict[str, tuple[Path, int]]) -> None:
        """Bring each Secret volume up to date (a write only when the Secret changed). A
        Secret not there yet raises: like the kubelet, the pod does not start without it."""
        for secret_name, (directory, mode) in volumes.items():
            secret = self.kube.get("v1", "Secret", secret_name, namespace=namespace)
            if secret is None:
                raise RuntimeError(f"Secret {namespace}/{secret_name} does not exist (yet)")
            if write_atomically(directory, secret_files(secret), mode):
                print(f"[dataplane] {namespace}: wrote Secret {secret_name} to {directory}",
                      file=sys.stderr, flush=True)  # fmt: skip

    def _start(self, key: str, deployment: dict[str, Any]) -> None:
        """Start the ModelDeployment's stand-in (its gateways come per pod, ``_start_replica``),
        recording each process as soon as it exists, so a stop at any moment (SIGTERM
        mid-start) still stops every one of them. The token comes first: if it cannot be
        minted, nothing starts and the next sync tries again."""
        namespace, name = key.split("/")
        mounts = secret_mounts(deployment)
        volumes = {
            m.secret: (self.state_dir / "volumes" / f"{namespace}_{name}" / m.secret, m.mode)
            for m in mounts
        }
        try:
            self._write_volumes(namespace, volumes)  # before anything starts, as a kubelet does
            token = self._gateway_kubeconfig(namespace, name, service_account_name(deployment))
        except Exception:
            for directory, _mode in volumes.values():
                shutil.rmtree(directory, ignore_errors=True)
            raise
        env = gateway_env(deployment, pod_name=name)
        standin_port = free_port()
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        served = env.get("PAITIENT_SERVED_MODEL_NAME", name)
        kubeconfig = self._kubeconfig_path(namespace, name)
        # The Service the operator renders is named like the Deployment.
        model = ModelPod(key, token, kubeconfig, f"{name}.{namespace}.svc", volumes)
        model.standin_url = f"http://127.0.0.1:{standin_port}"
        pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        model.grace_seconds = float(pod_spec.get("terminationGracePeriodSeconds", 30))
        self.pods[key] = model
        standin_args = [sys.executable, "-m", "tests.standins.vllm_standin"]
        standin_args += ["--port", str(standin_port), "--served-model-name", served]
        if env.get("PAITIENT_MAX_MODEL_LEN"):  # the spec's context, as vLLM would get it
            standin_args += ["--max-model-len", env["PAITIENT_MAX_MODEL_LEN"]]
        log = logs / f"standin-{namespace}-{name}.log"
        model.processes.append(self._spawn(standin_args, os.environ.copy(), log))

    def _start_replica(self, model: ModelPod, deployment: dict[str, Any], pod: str) -> None:
        """The gateway of one running pod: its own name, port and ledger; the ModelDeployment's
        account, volumes and stand-in."""
        namespace, name = model.key.split("/")

        def secret_value(secret: str, key: str) -> str:
            found = self.kube.get("v1", "Secret", secret, namespace=namespace)
            data = (found or {}).get("data") or {}
            if key not in data:  # as a kubelet: the container does not start without it
                raise RuntimeError(f"Secret {namespace}/{secret} has no {key} (yet)")
            return base64.b64decode(data[key]).decode()

        mounts = secret_mounts(deployment)
        env = local_env(
            gateway_env(deployment, pod_name=pod, secret_value=secret_value),
            {m.mount_path: model.volumes[m.secret][0] for m in mounts},
        )
        env = self._reach_services(env)
        tls = bool(env.get("PAITIENT_TLS_CERT_FILE"))
        port = free_port()
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        # In a pod the metrics port is the pod's own; here every gateway shares the host's
        # loopback, so each gets a free one, published in the routes file (metricsUrl).
        metrics_url = ""
        if env.get("PAITIENT_METRICS_PORT"):
            env["PAITIENT_METRICS_PORT"] = str(free_port())
            metrics_url = f"http://127.0.0.1:{env['PAITIENT_METRICS_PORT']}"
        gw_env = {**os.environ, **env, "PAITIENT_UPSTREAM_URL": model.standin_url}
        gw_env.pop("KUBECONFIG", None)  # nothing to fall back on but its own kubeconfig
        logs = self.state_dir / "logs"
        process = self._spawn(
            [
                sys.executable, "-m", "paitient_gateway", "--kubeconfig", str(model.kubeconfig),
                "--host", "127.0.0.1", "--port", str(port),
                "--ledger-dir", str(self.state_dir / "ledgers" / namespace / name / pod),
            ],
            gw_env, logs / f"gateway-{namespace}-{pod}.log",
        )  # fmt: skip
        model.replicas[pod] = Replica(pod, url, process, metrics_url=metrics_url)
        probe = probe_context() if tls else None
        wait_http_ok(f"{url}/healthz/live", 30, context=probe)
        # Its caches list in well under a second: give it that, so the same sync can report the
        # pod Ready; a gateway slower than this is reported Ready by a later sync.
        wait_http_ok(f"{url}/healthz/ready", 5, context=probe)
        print(
            f"[dataplane] {model.key}: {pod}'s gateway {url} as {model.token.user} (token "
            f"until {model.token.expires_at:%Y-%m-%dT%H:%M:%SZ}) -> {model.standin_url}",
            file=sys.stderr,
            flush=True,
        )

    def _reach_services(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with a store at a cluster Service reached through a relay into the node."""
        service = store_service(env)
        if service is None or self.netns is None:
            return env
        if self._relays is None:
            self._relays = ServiceRelays(self.kube, self.netns, self.state_dir / "logs")
        return relayed_store_env(env, self._relays.local_port(*service))

    def _spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    def _write_routes(self) -> None:
        table = {}
        for key, model in sorted(self.pods.items()):
            if not model.replicas:
                continue
            ready = [r for r in model.replicas.values() if r.ready]
            listed = ready or list(model.replicas.values())  # a route exists first
            table[key] = {
                "url": listed[0].url,
                "serverName": model.server_name,
                # The pod names let the front door's replica picker match EndpointSlices and
                # the operator's autoscaler read each replica's gateway; each gateway has a
                # metrics port of its own.
                "replicas": [
                    {
                        "url": r.url,
                        "pod": r.pod,
                        **({"metricsUrl": r.metrics_url} if r.metrics_url else {}),
                    }
                    for r in listed
                ],
                # Tests configure the deployment's stand-in (pacing) directly.
                "standin": model.standin_url,
            }
        tmp = self.routes.with_suffix(".tmp")
        tmp.write_text(json.dumps(table, indent=2))
        tmp.replace(self.routes)  # atomic: the front door never reads half a file

    def stop(self) -> None:
        for pod in self.pods.values():
            pod.stop()
        self.pods.clear()
        for retiring in self.retiring:  # the data plane itself stops: no more waiting
            _stop_processes([*retiring.gateways, *retiring.after])
        self.retiring.clear()
        if self._relays is not None:
            self._relays.stop()
        with contextlib.suppress(OSError):
            self._write_routes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paitient-dataplane", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--routes", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--netns", type=Path, required=True)
    args = parser.parse_args(argv)
    plane = DataPlane(
        Kube.from_kubeconfig(args.kubeconfig),
        args.kubeconfig,
        args.routes,
        args.state_dir,
        netns=args.netns,
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

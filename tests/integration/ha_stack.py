"""The chart on the local cluster's real node with what the availability tests and benchmark
need: the release (two front doors, two operators, the store), the host reaching the front door
through its Service (a relay into the cluster's network namespace, so kube-proxy picks the pod
as for any client), a tenant with a key, and a tiny model served by real vLLM."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paitient_secure_model as sdk

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.tls import client_context
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.host.processes import free_port, wait_http_ok
from paitient_localcluster.host.relay import PortMapping, relay_argv
from paitient_localcluster.stack.chart import CHART
from paitient_localcluster.stack.tiny_model import MODEL_URI, fill_model_claim
from tests.integration import steady_load
from tests.integration.chart_release import (
    HELM,
    KUBECTL,
    Release,
    installed_release,
    ready_pods,
    run,
)
from tests.integration.failover import lease_holder
from tests.integration.gateway_tls import ca_bundle
from tests.integration.stack_helpers import tenant_ready
from tests.integration.waiting import wait_for

TENANT = ("paitient.ai/v1alpha1", "Tenant")
LEASE = "paitient-operator"


@dataclass(frozen=True)
class Stack:
    """The release, how the host reaches its front door, and a tenant with a served model."""

    release: Release
    base_url: str
    ca_bundle: Path  # the front door serves TLS with the operator's CA (paitient-ca-bundle)
    tenant: str
    client_id: str
    key: str
    model: str  # a CPU deployment of the tiny model, served by real vLLM

    def client(self) -> sdk.SecureModelClient:
        return sdk.SecureModelClient(api_key=self.key, client_id=self.client_id,
                                     base_url=self.base_url, ca_bundle=self.ca_bundle,
                                     timeout=60)  # fmt: skip

    def load(self) -> steady_load.SteadyLoad:
        return steady_load.SteadyLoad(
            self.client,
            [steady_load.generate(self.model), steady_load.generate_stream(self.model),
             steady_load.subscription, steady_load.deployments],
        )  # fmt: skip


@contextlib.contextmanager
def ha_stack(kubeconfig: Path, kube: Kube, prefix: str = "ha") -> Iterator[Stack]:
    """Everything above, removed afterwards (the tenant, the relay, the release)."""
    with installed_release(kubeconfig, kube, prefix) as release:
        service = kube.get("v1", "Service", release.api, namespace=release.namespace) or {}
        port = free_port()
        mapping = PortMapping(
            port, service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]
        )
        relay = subprocess.Popen(relay_argv(LocalCluster().namespaces.netns_path, [mapping]),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
        name = f"ha{uuid.uuid4().hex[:6]}"
        tmp = Path(tempfile.mkdtemp(prefix="paitient-ha-"))
        try:
            base = f"https://127.0.0.1:{port}"
            ca = ca_bundle(kube, release.namespace)
            bundle = tmp / "ca.pem"
            bundle.write_text(ca)
            assert wait_http_ok(f"{base}/readyz", 60, context=client_context(ca)), (
                "the front door through its Service"
            )
            admin.create_tenant(kube, name, f"{name}-clinic", "enterprise", None, {"enterprise"})
            wait_for(lambda: tenant_ready(kube, name), timeout=60, what="tenant Ready")
            wait_for(lambda: kube.get("v1", "Secret", f"paitient-api-keys-{name}",
                                      namespace=release.namespace), what="key Secret")  # fmt: skip
            key = admin.create_key(kube, f"{name}-clinic", None, "", release.namespace)[0]
            fill_model_claim(kube, f"tenant-{name}")
            ready = Stack(release, f"{base}/v1", bundle, name, f"{name}-clinic", key, "tiny")
            with ready.client() as client:
                client.deploy_model(model_name=MODEL_URI, deployment_name="tiny", use_gpu=False,
                                    cpu="500m", memory="6Gi")  # fmt: skip
                client.wait_until_ready("tiny", timeout=600, poll_interval=2)
                assert client.generate(deployment_id="tiny", prompt="Hi", max_tokens=4).text
            yield ready
        finally:
            relay.terminate()
            relay.wait(timeout=10)
            shutil.rmtree(tmp, ignore_errors=True)
            _delete_tenant(kube, name)


def _delete_tenant(kube: Kube, name: str) -> None:
    if kube.get(*TENANT, name) is None:
        return
    admin.delete_tenant(kube, name, force=True)
    try:
        wait_for(lambda: kube.get(*TENANT, name) is None, timeout=60, what="tenant deleted")
    except AssertionError:
        kube.patch(*TENANT, name, {"metadata": {"finalizers": None}})


def under_load(
    ha: Stack, disruption: Callable[[], object], settle: float = 3.0
) -> steady_load.Outcome:
    """Run ``disruption()`` under the steady load, and the load a little longer on the pods
    that replaced what it took; what the clients saw."""
    load = ha.load().start()
    try:
        wait_for(lambda: load.calls_so_far() >= 8, timeout=120, what="the load going")
        disruption()
        time.sleep(settle)
    finally:
        outcome = load.stop()
    return outcome


def api_pods(kube: Kube, release: Release, *, ready: bool = True) -> set[str]:
    """The front door's pods: Ready ones (not stopping), or every one there is."""
    if ready:
        return {p["metadata"]["name"] for p in ready_pods(kube, release, "api")}
    pods = kube.list(
        "v1", "Pod", namespace=release.namespace, label_selector=release.selector("api")
    )
    return {p["metadata"]["name"] for p in pods}


def _replaced(kube: Kube, release: Release, gone: set[str]) -> Callable[[], bool]:
    def check() -> bool:
        return len(api_pods(kube, release)) == 2 and not api_pods(kube, release, ready=False) & gone

    return check


def roll_front_door(kube: Kube, release: Release) -> None:
    """``helm upgrade`` changing the front door's pod template (as a new image does); returns
    once two new pods are Ready and the old ones are gone (drained, then stopped)."""
    before = api_pods(kube, release, ready=False)
    run(HELM, "upgrade", release.name, str(CHART), "--namespace", release.namespace,
        "--reuse-values", "--set-string",
        f"frontDoor.podAnnotations.paitient\\.ai/rollout={uuid.uuid4().hex[:8]}",
        kubeconfig=release.kubeconfig)  # fmt: skip
    wait_for(
        _replaced(kube, release, before), timeout=300, interval=0.5, what="the front door rolled"
    )


def delete_front_door_pod(kube: Kube, release: Release) -> None:
    """A front door pod deleted (an eviction, a scale-down); returns once it is gone and a new
    one is Ready."""
    victim = sorted(api_pods(kube, release))[0]
    run(KUBECTL, "-n", release.namespace, "delete", "pod", victim, "--wait=false",
        kubeconfig=release.kubeconfig)  # fmt: skip
    wait_for(_replaced(kube, release, {victim}), timeout=300, interval=0.5,
             what="the deleted pod gone, a new one Ready")  # fmt: skip


def crash_front_door_pod(kube: Kube, release: Release) -> None:
    """SIGKILL one front door pod's process (a crash: nothing drains); returns once the kubelet
    restarted it and it is Ready again."""
    pod = sorted(api_pods(kube, release))[0]

    def restarts() -> int:
        live = kube.get("v1", "Pod", pod, namespace=release.namespace) or {}
        statuses = live.get("status", {}).get("containerStatuses") or [{}]
        return int(statuses[0].get("restartCount", 0))

    before = restarts()
    os.kill(host_pid(pod, "paitient-api"), signal.SIGKILL)
    wait_for(lambda: restarts() > before and pod in api_pods(kube, release), timeout=300,
             interval=0.5, what="the crashed front door back and Ready")  # fmt: skip


def host_pid(pod: str, program: str) -> int:
    """The host PID of ``program`` in ``pod``'s container (the kubelet sets HOSTNAME to the
    pod's name; the node's containers are processes of this machine)."""
    marker = f"HOSTNAME={pod}\0".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ, cmdline = (entry / "environ").read_bytes(), (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in environ and program.encode() in cmdline:
            return int(entry.name)
    raise AssertionError(f"no {program} process of pod {pod} on this machine")


def kill_operator_leader(kube: Kube, release: Release) -> tuple[str, str, float]:
    """SIGKILL the leading operator's process (nothing is released, as when its node is lost);
    (its identity, the new leader's, the seconds until the new one held the Lease). The new
    leader is the other pod's standby or, as often, the killed pod's own container restarted
    by the kubelet: both wait for the Lease to lapse, whichever asks first after that wins."""
    pods = {p["metadata"]["name"] for p in ready_pods(kube, release, "operator")}
    old = lease_holder(kube, release.namespace)
    assert old.split("_")[0] in pods and len(pods) == 2, (old, pods)
    os.kill(host_pid(old.split("_")[0], "paitient-operator"), signal.SIGKILL)
    killed = time.monotonic()

    def another() -> str:
        holder = lease_holder(kube, release.namespace)
        return holder if holder != old else ""

    new = wait_for(another, timeout=60, interval=0.05, what="another operator holding the Lease")
    return old, new, time.monotonic() - killed

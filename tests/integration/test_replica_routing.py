"""The front door picks a deployment's replica itself, on the local cluster: from the Ready
endpoints of the deployment's EndpointSlices (which the real EndpointSlice controller writes
from the pods the local data plane reports Ready), one gateway per pod.

- A tenant's prompts that start alike (one system prompt, many questions) all go to one replica;
  other system prompts spread over the three.
- That replica's gateway crashes while its pod is still Ready (the data plane, which plays the
  kubelet, is paused, so no probe has noticed yet): the same prompts are answered by another
  replica with no error to the client, each after one refused connection; once the pod is
  reported not Ready its endpoint leaves the slice, and with the pod replaced nobody tries the
  crashed one any more.
- ``spec.routing`` that makes no sense is refused by the API server (the CRD's schema) and by
  the REST API (the one error shape), each naming the field.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube, KubeError
from paitient_localcluster.host.processes import probe_context
from tests.integration.frontdoor_process import ApiProcess, call, client_trust
from tests.integration.gateway_tls import route_entry
from tests.integration.metrics_text import metric_sum
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
NAME = "routed"
SYSTEM = "You write discharge letters for the cardiology ward of St. Elsewhere. " * 6  # > 256


def manifest(namespace: str, routing: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"}, "useGpu": True, "gpu": {"count": 1},
        "replicas": 3, "storage": {"size": "5Gi", "storageClassName": "encrypted-local"},
    }  # fmt: skip
    if routing is not None:
        spec["routing"] = routing
    return {"apiVersion": MD[0], "kind": MD[1],
            "metadata": {"name": NAME, "namespace": namespace}, "spec": spec}  # fmt: skip


def ready_endpoints(kube: Kube, namespace: str) -> list[str]:
    slices = kube.list("discovery.k8s.io/v1", "EndpointSlice", namespace=namespace,
                       label_selector=f"kubernetes.io/service-name={NAME}")  # fmt: skip
    return sorted(
        e["targetRef"]["name"]
        for s in slices
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready") is not False
    )


def serving(kube: Kube, namespace: str) -> bool:
    """The deployment Ready (the front door serves only a Ready one) with three Ready endpoints."""
    md = kube.get(*MD, NAME, namespace=namespace) or {}
    ready = (md.get("status") or {}).get("phase") == "Ready"
    return ready and len(ready_endpoints(kube, namespace)) == 3


def front_door_count(api: ApiProcess, reason: str) -> float:
    with urllib.request.urlopen(
        f"{api.root}/metrics", timeout=10, context=client_trust()
    ) as response:
        return metric_sum(
            response.read().decode(), "paitient_api_routing_fallbacks_total", reason=reason
        )


def served(routes: Path, key: str) -> dict[str, float]:
    """Completions each pod's gateway has answered, by pod."""
    counts = {}
    for replica in route_entry(routes, key)["replicas"]:
        with urllib.request.urlopen(
            f"{replica['url']}/metrics", timeout=5, context=probe_context()
        ) as response:
            page = response.read().decode()
        counts[replica["pod"]] = metric_sum(
            page, "paitient_gateway_requests_total", route="/v1/completions", status="200"
        )
    return counts


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {pod: n - before.get(pod, 0.0) for pod, n in after.items() if n - before.get(pod, 0.0)}


def generate(api: ApiProcess, tenant: dict[str, str], prompt: str) -> int:
    headers = {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}
    body = {"deployment_id": NAME, "prompt": prompt, "max_tokens": 4}
    status, _, answer = call("POST", f"{api.base_url}/generate", body, headers)
    assert status == 200, answer
    return status


def gateway_pid(plane: subprocess.Popen[bytes], url: str) -> int:
    """The data plane's child serving ``url`` (it started one gateway per pod)."""
    port = url.rsplit(":", 1)[1]
    children = Path(f"/proc/{plane.pid}/task/{plane.pid}/children").read_text().split()
    for pid in children:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"paitient_gateway" in argv and port.encode() in argv:
            return int(pid)
    raise AssertionError(f"no gateway process of the data plane serves {url}")


def dead(pid: int) -> bool:
    """Gone, or a zombie its (stopped) parent has not reaped: its sockets are closed."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def refuses(url: str) -> bool:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def tenant(stack: ApiProcess, kube: Kube) -> Iterator[dict[str, str]]:
    info = make_tenant(kube)
    try:
        yield info
    finally:
        admin.delete_tenant(kube, info["name"], force=True)


def test_prefix_affinity_and_a_crashed_replica_skipped_without_an_error(
    stack: ApiProcess,
    kube: Kube,
    tenant: dict[str, str],
    dataplane_process: tuple[subprocess.Popen[bytes], Path],
) -> None:
    plane, routes = dataplane_process
    namespace = tenant["namespace"]
    key = f"{namespace}/{NAME}"
    kube.create(manifest(namespace))
    wait_for(lambda: serving(kube, namespace), timeout=180,
             what="the deployment Ready, three Ready endpoints in its EndpointSlices")  # fmt: skip
    wait_for(lambda: len(route_entry(routes, key).get("replicas") or []) == 3, timeout=30,
             what="a gateway for each pod")  # fmt: skip

    # The front door knows the endpoints once its watch has them: from then on no request of
    # this deployment goes to the Service.
    def routed_by_endpoints() -> bool:
        before = front_door_count(stack, "service")
        generate(stack, tenant, SYSTEM + "warm up")
        return front_door_count(stack, "service") == before

    wait_for(routed_by_endpoints, timeout=30, what="the front door routing by EndpointSlices")

    # One system prompt, many questions: one replica.
    before = served(routes, key)
    for question in range(12):
        generate(stack, tenant, SYSTEM + f"Question {question}: when can the patient fly?")
    affine = delta(served(routes, key), before)
    assert list(affine.values()) == [12.0], affine
    (hot,) = affine

    # Sixteen other system prompts: spread over the replicas.
    before = served(routes, key)
    for variant in range(16):
        generate(stack, tenant, f"Template {variant}: " + SYSTEM + "and one question")
    assert len(delta(served(routes, key), before)) >= 2

    # The affine replica's gateway crashes while its pod is still Ready.
    hot_url = next(r["url"] for r in route_entry(routes, key)["replicas"] if r["pod"] == hot)
    os.kill(plane.pid, signal.SIGSTOP)  # the "kubelet" probes nothing meanwhile
    try:
        pid = gateway_pid(plane, hot_url)
        os.kill(pid, signal.SIGKILL)
        # Gone, and its port refusing: a request on a connection it held open when it died
        # may have reached it, and is never sent again (the client gets a 502); these are new
        # connections, refused before anything is sent.
        wait_for(lambda: dead(pid) and refuses(hot_url), what="the killed gateway gone")
        assert hot in ready_endpoints(kube, namespace)
        refused = front_door_count(stack, "refused")
        for question in range(5):
            assert generate(stack, tenant, SYSTEM + f"Question {question} again") == 200
        assert front_door_count(stack, "refused") - refused == 5  # each tried it first
    finally:
        os.kill(plane.pid, signal.SIGCONT)

    # The probe fails, the pod turns not Ready, its endpoint leaves the slice. The crashed pod
    # is replaced (a kubelet would restart its container; the data plane restarts no process,
    # so the pod is deleted and its Deployment makes another), and the front door routes over
    # the three Ready endpoints without trying the crashed one again.
    wait_for(lambda: hot not in ready_endpoints(kube, namespace), timeout=60,
             what=f"{hot} out of the EndpointSlice")  # fmt: skip
    kube.delete("v1", "Pod", hot, namespace=namespace)

    wait_for(lambda: serving(kube, namespace), timeout=180, what="three Ready replicas again")

    def not_tried() -> bool:
        before = front_door_count(stack, "refused")
        generate(stack, tenant, SYSTEM + "one more")
        return front_door_count(stack, "refused") == before

    wait_for(not_tried, timeout=30, what="the front door to stop trying the crashed replica")


@pytest.mark.parametrize(
    ("routing", "field"),
    [
        ({"strategy": "fastest"}, "spec.routing.strategy"),
        ({"prefixLength": 0}, "spec.routing.prefixLength"),
        ({"prefixLength": 10**6}, "spec.routing.prefixLength"),
        ({"loadBound": 0.5}, "spec.routing.loadBound"),
    ],
)
def test_routing_that_makes_no_sense_is_refused_by_the_api_server(
    kube: Kube, operator: object, routing: dict[str, Any], field: str
) -> None:
    namespace = f"routing-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        with pytest.raises(KubeError) as refused:
            kube.create(manifest(namespace, routing))
        assert refused.value.status == 422 and field in refused.value.message
    finally:
        kube.delete("v1", "Namespace", namespace)


@pytest.mark.parametrize(
    ("routing", "field"),
    [
        ({"strategy": "fastest"}, "routing.strategy"),
        ({"prefix_length": 0}, "routing.prefix_length"),
        ({"prefix_length": 10**6}, "routing.prefix_length"),
        ({"load_bound": 0.5}, "routing.load_bound"),
        ({"prefixLength": 64}, "routing.prefixLength"),  # the REST API's names are snake_case
    ],
)
def test_routing_that_makes_no_sense_is_refused_by_the_rest_api(
    stack: ApiProcess, tenant: dict[str, str], routing: dict[str, Any], field: str
) -> None:
    headers = {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}
    body = {"model_name": "ZimaBlueAI/HuatuoGPT-o1-8B", "routing": routing}
    status, _, answer = call("POST", f"{stack.base_url}/deployments", body, headers)
    assert status == 422 and answer["error"]["type"] == "validation_error"
    assert answer["error"]["message"].startswith(field)

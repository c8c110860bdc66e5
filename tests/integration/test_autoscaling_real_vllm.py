"""spec.autoscaling with real vLLM on the real node, through the product as installed: the
chart's operator (which reads each replica's load from its gateway by the pod's address) and
front door (which holds requests at zero and reaches gateways by their Services), the SDK on the
host. One deployment of the tiny model carries the whole story, so vLLM starts as few times as
the story needs (each start is a minute or two here):

1. at zero replicas, concurrent requests (SDK generate, an OpenAI stream, an OpenAI chat) are
   held, one replica is asked for once, and every request is served;
2. a step of load (streams that keep vLLM busy) raises the replicas to the maximum;
3. the operator's pod, deleted while the new replica starts, changes nothing: its successor
   keeps the decision (no second one, no step back);
4. a user's HPA on the Deployment makes the operator leave the replicas alone;
5. idle, the deployment goes back to zero, the scaled-down replicas having drained first;
6. throughout, what clients received equals what the gateways billed, exactly.

Sizes: ``cpu: 500m`` and ``memory: 6Gi`` per replica, so two replicas fit the 2-core node beside
the control pods (docs/autoscaling.md). Condition waits only; the figures live in
``make bench-autoscale``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paitient_secure_model as sdk
import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.stack import lifecycle
from paitient_localcluster.stack.tiny_model import MODEL_URI, fill_model_claim
from tests.integration.autoscaling_load import FrontDoorLoad
from tests.integration.failover import lease_holder
from tests.integration.release import Release, installed_release
from tests.integration.stack_helpers import make_tenant
from tests.integration.test_autoscaling import (
    MD,
    billed,
    deployment_replicas,
    events,
    posted,
    scaled_to,
    status,
)
from tests.integration.waiting import wait_for
from tests.prerequisites import missing

pytestmark = pytest.mark.real_vllm

NAME = "elastic"
# The product's settings for this story: a pass every 2 s, a gateway that stops serving new
# requests 2 s after SIGTERM, and a hold long enough for vLLM's start on this busy machine.
VALUES = (
    "--set", "operator.config.autoscaling.intervalSeconds=2",
    "--set", "operator.config.drain.shutdownDelaySeconds=2",
    "--set", "operator.config.drain.shutdownTimeoutSeconds=120",
    "--set", "frontDoor.holdSeconds=900",
)  # fmt: skip
START = 900  # vLLM's start: about a minute here, up to several while the machine is busy


@pytest.fixture(scope="module")
def release(kubeconfig: Path, kube: Kube) -> Iterator[Release]:
    if kubeconfig != LocalCluster().kubeconfig:
        missing(
            "real vLLM runs on the local cluster's real node only (PAITIENT_TEST_KUBECONFIG names another)"
        )
    with installed_release(kubeconfig, kube, VALUES) as installed:
        yield installed


@pytest.fixture(scope="module")
def tenant(release: Release, kube: Kube) -> Iterator[dict[str, str]]:
    info = make_tenant(kube)
    fill_model_claim(kube, info["namespace"])
    yield info
    admin.delete_tenant(kube, info["name"], force=True)


def manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": MD[0], "kind": MD[1], "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "model": {"uri": MODEL_URI}, "useGpu": False,
            "resources": {"cpu": "500m", "memory": "6Gi"},
            "runtime": {"maxModelLen": 512},
            "storage": {"size": "1Gi", "storageClassName": "encrypted-local"},
            "autoscaling": {"minReplicas": 0, "maxReplicas": 2, "target": {"value": 2},
                            "stabilizationWindow": "5s", "scaleDownDelay": "60s"},
        },
    }  # fmt: skip


@pytest.mark.timeout(3600)  # three starts of vLLM on a busy machine, and two idle delays
def test_the_story_of_an_elastic_deployment_with_real_vllm(
    release: Release, tenant: dict[str, str], kube: Kube
) -> None:
    ns = tenant["namespace"]
    headers = {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}
    context = ssl.create_default_context(cafile=str(release.ca_bundle))
    client = sdk.SecureModelClient(api_key=tenant["key"], client_id=tenant["client_id"],
                                   base_url=release.base_url, ca_bundle=release.ca_bundle)  # fmt: skip
    kube.create(manifest(ns))
    received = 0
    try:
        # 1. At zero: held, one wake, every caller served.
        wait_for(lambda: status(kube, NAME, ns).get("phase") == "ScaledToZero", what="zero")
        assert client.get_deployment_status(NAME).status == "scaled-to-zero"
        at_zero = FrontDoorLoad(release.root, headers, NAME, clients=0, max_tokens=8, ssl=context)

        async def concurrent_at_zero() -> Any:
            generated = asyncio.to_thread(
                client.generate, deployment_id=NAME, prompt="Hello", max_tokens=8
            )
            results = await asyncio.gather(at_zero.once(4), generated)
            return results[1]

        generated = asyncio.run(concurrent_at_zero())
        assert at_zero.failures == [] and len(at_zero.answers) == 4
        assert generated.usage.completion_tokens >= 1
        received += at_zero.received_tokens + generated.usage.total_tokens
        assert len(posted(kube, NAME, ns, "ScaledFromZero")) == 1

        # 2 and 3. A step of load; the operator's pod deleted while the second replica starts.
        load = FrontDoorLoad(release.root, headers, NAME, clients=6, max_tokens=200, ssl=context)
        operator_pods = (
            f"app.kubernetes.io/instance={lifecycle.RELEASE},app.kubernetes.io/component=operator"
        )

        async def step_with_a_restart() -> dict[str, Any]:
            running = asyncio.ensure_future(load.run())
            await asyncio.to_thread(
                wait_for, lambda: deployment_replicas(kube, NAME, ns) == 2, START, 1.0,
                "the decision to scale up",
            )  # fmt: skip
            # The chart runs two operators; the one holding the Lease is the one deciding.
            pods = {p["metadata"]["name"] for p in kube.list(
                "v1", "Pod", namespace=lifecycle.SYSTEM_NAMESPACE, label_selector=operator_pods)}  # fmt: skip
            leader = lease_holder(kube, lifecycle.SYSTEM_NAMESPACE).split("_")[0]
            assert leader in pods, (leader, pods)
            kube.delete("v1", "Pod", leader, namespace=lifecycle.SYSTEM_NAMESPACE)
            up = await asyncio.to_thread(
                wait_for, lambda: scaled_to(kube, NAME, ns, 2), START, 2.0, "2 replicas Ready"
            )
            load.stop()
            await running
            return up

        up = asyncio.run(step_with_a_restart())
        assert load.failures == [], load.failures[:3]
        received += load.received_tokens
        decision = up["autoscaling"]["lastDecision"]
        assert (decision["fromReplicas"], decision["toReplicas"]) == (1, 2)
        assert decision["inputs"]["inFlight"] >= 3  # vLLM's own load, read from the gateways
        assert len(events(kube, NAME, ns, "ScaledUp")) == 1  # the new operator decided nothing

        # 4. A user's HPA: the operator yields.
        hpa = {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "users-own", "namespace": ns},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
                     "minReplicas": 2, "maxReplicas": 2,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                  "target": {"type": "Utilization", "averageUtilization": 90}}}]},
        }  # fmt: skip
        kube.create(hpa)
        yielded = wait_for(
            lambda: (status(kube, NAME, ns).get("autoscaling") or {}).get("yieldedTo"),
            what="the operator yielding to the user's HPA",
        )
        assert yielded == "HorizontalPodAutoscaler/users-own"
        kube.delete("autoscaling/v2", "HorizontalPodAutoscaler", "users-own", namespace=ns)
        wait_for(lambda: "yieldedTo" not in (status(kube, NAME, ns).get("autoscaling") or {}),
                 what="the replicas back to the operator")  # fmt: skip

        # 5. Idle: back to zero (each scaled-down replica drains first).
        back = wait_for(
            lambda: (s := status(kube, NAME, ns)).get("phase") == "ScaledToZero"
            and deployment_replicas(kube, NAME, ns) == 0 and s,
            timeout=START, interval=2, what="idle: back to zero",
        )  # fmt: skip
        assert back["autoscaling"]["lastDecision"]["toReplicas"] == 0
        wait_for(
            lambda: not kube.list("v1", "Pod", namespace=ns,
                                  label_selector=f"paitient.ai/modeldeployment={NAME}"),
            timeout=300, what="every replica gone",
        )  # fmt: skip

        # 6. Billed exactly what was received, including by the replicas that went.
        wait_for(lambda: billed(kube, ns, tenant["name"], NAME) == received, timeout=60,
                 what=f"billed == received ({received} tokens)")  # fmt: skip
    finally:
        client.close()
        kube.delete(*MD, NAME, namespace=ns)

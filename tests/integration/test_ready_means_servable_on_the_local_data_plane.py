"""``ready`` means servable, on the local data plane: the seed's flow deploy -> poll the status
until ``ready`` -> generate, with nothing in between, in both SDKs, 20 times, answers every
generate. Retries are off in both SDKs, so a single 503 fails the test.

What this proves is the chain from a pod's Ready condition to the REST status and the front
door's route, with the local data plane playing the kubelet's part for pods on the simulated
GPU nodes (KWOK runs no probes): it sets Ready only after the pod's gateway answered its
readiness probe and its route was written (``dataplane.py``, ``kwok_stages.py``). It does not
prove the kubelet's own probes: those run for real on the real node, where
``test_model_pods_on_the_real_node.py`` waits for the kubelet to report a CPU model's pod Ready
(its gateway's probe, real vLLM behind it) and then generates through the Service's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paitient_secure_model as sdk
import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from tests.integration.frontdoor_process import ApiProcess
from tests.integration.sdk_js import JsSdk
from tests.integration.stack_helpers import make_tenant, why_not_ready

ROUNDS = 10  # per SDK


@pytest.fixture(scope="module")
def seed_tenant(stack: ApiProcess, kube: Kube) -> Iterator[dict[str, str]]:
    """One tenant for all the rounds (enterprise: room for the deployments still being torn
    down while the next round deploys)."""
    tenant = make_tenant(kube, tier="enterprise")
    yield tenant
    admin.delete_tenant(kube, tenant["name"], force=True)


def test_the_data_planes_ready_deploy_wait_until_ready_generate_20_rounds_in_two_sdks(
    stack: ApiProcess, seed_tenant: dict[str, str], kube: Kube, dataplane: Path
) -> None:
    errors: list[tuple[str, int, str]] = []
    key, client_id = seed_tenant["key"], seed_tenant["client_id"]
    with sdk.SecureModelClient(
        api_key=key, client_id=client_id, base_url=stack.base_url, max_retries=0
    ) as client:
        for i in range(ROUNDS):
            try:
                deployment = client.deploy_model(
                    model_name="ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name=f"py-{i}", use_gpu=True
                )
                status = client.wait_until_ready(deployment.id, timeout=180, poll_interval=0.25)
                assert status.status == "ready"
                client.generate(deployment_id=deployment.id, prompt="ping", max_tokens=2)
                client.delete_deployment(deployment.id)
            except sdk.WaitTimeoutError as exc:
                why = why_not_ready(kube, seed_tenant["namespace"], f"py-{i}", dataplane)
                errors.append(("python", i, f"{type(exc).__name__}: {exc} [{why}]"))
            except sdk.PaitientError as exc:
                errors.append(("python", i, f"{type(exc).__name__}: {exc}"))
    with JsSdk(stack.base_url) as js:
        for i in range(ROUNDS):
            answer = js.call("seed", apiKey=key, clientId=client_id, deploymentName=f"js-{i}")
            if not answer["ok"]:
                errors.append(("js", i, f"{answer['error']}: {answer['message']}"))
    assert errors == []

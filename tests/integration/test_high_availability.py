"""A control plane that survives losing any one pod, on the local cluster's real node: the chart
installed with its defaults (two front doors, two operators, the store), a tiny model served by
real vLLM, and a steady load from the Python SDK (retries on) through the front door's Service.

- a rolling upgrade of the front door (``helm upgrade`` changing its pod template) and a
  deleted front-door pod give the clients no error: what failed was retried by the SDK;
- the operator leader's process killed (SIGKILL), a standby takes the Lease, a new
  ModelDeployment becomes Ready, and the new leader's pass over the old deployment writes
  nothing (the API server's audit log);
- the store runs with the operator's password and certificate, and only the product's pods
  reach it.

The figures (handover seconds, client errors) are benchmarks/bench_failover.py's.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paitient_common.kubeapi import Kube
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY
from paitient_images import image
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane import audit
from paitient_operator.certificates import x509
from paitient_operator.managed_store import CERTIFICATE_ANNOTATION, certificate_fingerprint
from tests.integration.chart_release import Release, ready_pods
from tests.integration.failover import reconciled_since, writes_since
from tests.integration.ha_stack import (
    Stack,
    api_pods,
    delete_front_door_pod,
    ha_stack,
    kill_operator_leader,
    lease_holder,
    roll_front_door,
    under_load,
)
from tests.integration.node_pods import connect, create_ready, pod_manifest
from tests.integration.waiting import wait_for
from tests.prerequisites import missing


@pytest.fixture(scope="module")
def ha(kubeconfig: Path, kube: Kube, dataplane: Path) -> Iterator[Stack]:
    """``dataplane``: the GPU deployment made after the failover runs on a simulated node."""
    if kubeconfig != LocalCluster().kubeconfig:
        missing("the real node is the local cluster's (PAITIENT_TEST_KUBECONFIG names another)")
    with ha_stack(kubeconfig, kube) as ready:
        yield ready


def test_a_rolling_upgrade_of_the_front_door_gives_clients_no_error(ha: Stack, kube: Kube) -> None:
    before = api_pods(kube, ha.release)
    assert len(before) == 2
    outcome = under_load(ha, lambda: roll_front_door(kube, ha.release))
    print("rolling upgrade:", outcome.summary(), dict(outcome.retries))
    assert not api_pods(kube, ha.release, ready=False) & before
    assert outcome.calls >= 20 and outcome.by_call["generate_stream"] > 0
    assert outcome.errors == []


def test_a_deleted_front_door_pod_gives_clients_no_error(ha: Stack, kube: Kube) -> None:
    outcome = under_load(ha, lambda: delete_front_door_pod(kube, ha.release))
    print("deleted pod:", outcome.summary(), dict(outcome.retries))
    assert outcome.calls >= 20
    assert outcome.errors == []


def test_the_operator_leaders_death_hands_over_and_a_new_deployment_becomes_ready(
    ha: Stack, kube: Kube
) -> None:
    release = ha.release
    log = release.kubeconfig.parent / "logs" / "audit.log"
    offset = audit.log_size(log)
    killed, leader, seconds = kill_operator_leader(kube, release)
    print(f"operator leader SIGKILLed: {leader} held the Lease {seconds:.1f} s later")
    with ha.client() as client:
        client.deploy_model(model_name="ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name="after",
                            use_gpu=True)  # fmt: skip
        client.wait_until_ready("after", timeout=120, poll_interval=0.5)
    user = release.user(release.operator)
    namespace = f"tenant-{ha.tenant}"
    # The new leader went over the model deployed before (it reads its certificate by name)
    # and wrote nothing to it or its children.
    wait_for(reconciled_since(log, offset, user, namespace, ha.model),
             what="the new leader's pass over the model")  # fmt: skip
    assert writes_since(log, offset, user, namespace, ha.model) == []
    # The killed container came back (a new candidate); the Lease stays with the new leader.
    wait_for(lambda: len(ready_pods(kube, release, "operator")) == 2, timeout=120,
             what="both operator pods Ready again")  # fmt: skip
    assert lease_holder(kube, release.namespace) == leader != killed


def _secret_pem(kube: Kube, namespace: str, name: str, key: str) -> str:
    secret = kube.get("v1", "Secret", name, namespace=namespace) or {}
    return base64.b64decode(secret["data"][key]).decode()


def test_the_store_runs_with_the_operators_secrets_and_only_the_products_pods_reach_it(
    ha: Stack, kube: Kube
) -> None:
    release, ns = ha.release, ha.release.namespace
    (store,) = ready_pods(kube, release, "store")
    assert store["status"]["containerStatuses"][0]["image"] == image("redis").reference
    # Its certificate: for the Service's name, from the operator's CA that everyone trusts.
    tls = f"{release.store}-tls"
    cert = x509.KeyPair(
        _secret_pem(kube, ns, tls, "tls.crt"), _secret_pem(kube, ns, tls, "tls.key")
    ).cert
    assert f"{release.store}.{ns}.svc" in x509.names_of(cert)
    bundle = kube.get("v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=ns) or {}
    assert x509.signed_by(cert, x509.load_certificates(bundle["data"][CA_BUNDLE_KEY]))
    stateful_set = kube.get("apps/v1", "StatefulSet", release.store, namespace=ns) or {}
    stamped = stateful_set["spec"]["template"]["metadata"]["annotations"][CERTIFICATE_ANNOTATION]
    assert stamped == certificate_fingerprint(kube.get("v1", "Secret", tls, namespace=ns))
    # The password: in the operator's Secret; the server holds only its ACL file.
    auth = kube.get("v1", "Secret", f"{release.store}-auth", namespace=ns) or {}
    assert set(auth["data"]) == {"password", "users.acl"}
    # Who reaches it: the front door and the operator, and model pods in tenant namespaces.
    address = (kube.get("v1", "Service", release.store, namespace=ns) or {})["spec"]["clusterIP"]
    front = sorted(api_pods(kube, release))[0]
    assert connect(release.kubeconfig, ns, front, address, 6379) == "open"
    probe_ns = f"t-storeprobe-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": probe_ns, "labels": {"paitient.ai/tenant": "probe",
                                     "pod-security.kubernetes.io/enforce": "restricted"}}})  # fmt: skip
    probe_image = image("paitient-gateway").reference
    sleep = ["python3", "-c", "import time; time.sleep(10**8)"]
    try:
        model = create_ready(kube, probe_ns, pod_manifest(
            "model", probe_image, sleep, {"app.kubernetes.io/name": "paitient-model"}))  # fmt: skip
        other = create_ready(kube, probe_ns, pod_manifest("other", probe_image, sleep))
        stranger = create_ready(kube, ns, pod_manifest("stranger", probe_image, sleep))
        seen = {
            "model pod, tenant namespace": _reach(release, probe_ns, model, address),
            "other pod, tenant namespace": _reach(release, probe_ns, other, address),
            "other pod, release namespace": _reach(release, ns, stranger, address),
        }
        assert seen == {
            "model pod, tenant namespace": "open",
            "other pod, tenant namespace": "blocked",
            "other pod, release namespace": "blocked",
        }
    finally:
        kube.delete("v1", "Pod", "stranger", namespace=ns)
        kube.delete("v1", "Namespace", probe_ns)


def _reach(release: Release, namespace: str, pod: dict[str, Any], address: str) -> str:
    """ "open" or "blocked". kube-router programs a new pod's policy membership a moment after
    it starts: an open verdict is final, a blocked one is asked again for a few seconds."""
    name = pod["metadata"]["name"]
    for _ in range(4):
        if connect(release.kubeconfig, namespace, name, address, 6379, timeout=2) == "open":
            return "open"
        time.sleep(1)
    return "blocked"

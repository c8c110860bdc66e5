"""What `make up` does, on the session's cluster: the chart installed into paitient-system with
the built images and the front door's HTTPS certificate, its operator and front door pods Ready
on the real node, the front door routing to gateways by their Services (no routes file), and the
host reaching it only through the relay on 127.0.0.1, the SDK verifying TLS against the local
CA. (`make demo`'s model on top of it is real vLLM: tests/integration/test_model_pods_on_the_real_node.py
serves the same tiny model from the same claim.)

While the release is installed, the session's own operator is paused: two operators would fight.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paitient_secure_model as sdk
import pytest

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane.pki import NODE_NAME
from paitient_localcluster.host.processes import Managed, free_port
from paitient_localcluster.stack import lifecycle
from paitient_localcluster.stack.chart import helm
from tests.integration.operator_process import OperatorProcess
from tests.integration.stack_helpers import make_tenant


@pytest.fixture
def made_up(
    kubeconfig: Path, kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """``lifecycle.up()`` on this cluster, on a free host port; the release, its certificate and
    the relay removed afterwards (the cluster stays: it is the session's)."""
    if kubeconfig != LocalCluster().kubeconfig:
        pytest.skip("`make up` runs on the local cluster only")
    relay = Managed(lifecycle.FRONT_DOOR_RELAY, kubeconfig.parent)
    if relay.read_pid() is not None:
        pytest.skip("`make up`'s release runs on this cluster already")
    monkeypatch.setattr(lifecycle, "API_PORT", free_port())
    with OperatorProcess.others_paused():
        try:
            base_url, ca_bundle, _ = lifecycle.up()
            yield base_url, ca_bundle
        finally:
            relay.stop()
            helm(kubeconfig, "uninstall", lifecycle.RELEASE,
                 "--namespace", lifecycle.SYSTEM_NAMESPACE, "--wait", "--ignore-not-found")  # fmt: skip
            kube.delete("v1", "Secret", lifecycle.TLS_SECRET, namespace=lifecycle.SYSTEM_NAMESPACE)


def _release_pods(kube: Kube) -> list[dict[str, Any]]:
    return kube.list("v1", "Pod", namespace=lifecycle.SYSTEM_NAMESPACE,
                     label_selector=f"app.kubernetes.io/instance={lifecycle.RELEASE}")  # fmt: skip


def test_make_up_serves_the_api_from_pods_on_the_real_node_through_host_loopback_only(
    made_up: tuple[str, Path], kube: Kube
) -> None:
    base_url, ca_bundle = made_up
    assert base_url == f"https://127.0.0.1:{lifecycle.API_PORT}/v1"
    pods = {p["metadata"]["labels"]["app.kubernetes.io/component"]: p for p in _release_pods(kube)}
    assert set(pods) == {"operator", "api", "store"}
    for pod in pods.values():
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert all(c["ready"] for c in pod["status"]["containerStatuses"])
    args = pods["api"]["spec"]["containers"][0]["args"]
    assert any(a.startswith("--gateway-url=https://{name}.{namespace}.svc:") for a in args)
    assert not any("file:" in a for a in args)
    # HTTPS only, verified against the local CA; the relay listens on loopback alone.
    context = ssl.create_default_context(cafile=str(ca_bundle))
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/readyz", context=context) as ok:
        assert ok.status == 200
    port = f"{lifecycle.API_PORT:04X}"
    listening = {
        fields[1]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
        if fields[3] == "0A" and fields[1].endswith(f":{port}")  # LISTEN on the API port
    }
    assert listening == {f"0100007F:{port}"}  # 127.0.0.1 only, no other address, no IPv6
    tenant = make_tenant(kube)
    try:
        client = sdk.SecureModelClient(api_key=tenant["key"], client_id=tenant["client_id"],
                                       base_url=base_url, ca_bundle=ca_bundle)  # fmt: skip
        assert client.get_subscription().tier == "standard"
        deployment = client.deploy_model(model_name="pvc://tiny-model/tiny-llama", use_gpu=False,
                                         cpu="1", memory="6Gi", replicas=0)  # fmt: skip
        assert deployment.model_name == "pvc://tiny-model/tiny-llama"
        md = kube.get("paitient.ai/v1alpha1", "ModelDeployment", deployment.id,
                      namespace=tenant["namespace"]) or {}  # fmt: skip
        assert md["spec"]["model"] == {"uri": "pvc://tiny-model/tiny-llama", "revision": "main"}
        assert md["spec"]["resources"] == {"cpu": "1", "memory": "6Gi"}
        client.close()
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)

"""What `make up` does, on the session's cluster: the chart installed into paitient-system with
the built images and the front door's HTTPS certificate, its operator and front door pods Ready
on the real node, the front door routing to gateways by their Services (no routes file), and the
host reaching it only through the relay on 127.0.0.1, the SDK verifying TLS against the local
CA; and the whole path the README promises, end to end through the installed product: the SDK
on the host, the chart's front door pod, the gateway Service by its DNS name, a real gateway and
real vLLM serving the tiny model on the real node (the session's one real deployment,
``real_model``), with the answer, the usage counted and the audit lines checked.

While the release is installed, the session's own operator is paused: two operators would fight.
The chart's operator takes the real deployment over meanwhile, and hands it back.
"""

from __future__ import annotations

import contextlib
import json
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
from paitient_operator.config import OperatorConfig
from tests.integration import key_leaks
from tests.integration.node_pods import exec_python, kubectl
from tests.integration.operator_process import OperatorProcess
from tests.integration.real_model import RealModel
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for
from tests.prerequisites import missing


@pytest.fixture(scope="module")
def made_up(kubeconfig: Path, kube: Kube, real_model: RealModel) -> Iterator[tuple[str, Path]]:
    """``lifecycle.up()`` on this cluster, on a free host port; the release, its certificate and
    the relay removed afterwards (the cluster stays: it is the session's). The real deployment
    is up first, under the session's operator."""
    if kubeconfig != LocalCluster().kubeconfig:
        missing("`make up` runs on the local cluster only")
    relay = Managed(lifecycle.FRONT_DOOR_RELAY, kubeconfig.parent)
    if relay.read_pid() is not None:
        missing("`make up`'s release runs on this cluster already: `make down` first")
    with pytest.MonkeyPatch.context() as patch, OperatorProcess.others_paused():
        patch.setattr(lifecycle, "API_PORT", free_port())
        try:
            base_url, ca_bundle, _ = lifecycle.up()
            yield base_url, ca_bundle
        finally:
            relay.stop()
            helm(kubeconfig, "uninstall", lifecycle.RELEASE,
                 "--namespace", lifecycle.SYSTEM_NAMESPACE, "--wait", "--ignore-not-found")  # fmt: skip
            kube.delete("v1", "Secret", lifecycle.TLS_SECRET, namespace=lifecycle.SYSTEM_NAMESPACE)


VLLM_PORT = OperatorConfig().vllm_port


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


PROMPT = "The first patient of the day at the clinic"
MAX_TOKENS = 8
# vLLM itself, asked from inside the model pod (its own container, 127.0.0.1): the reference
# answer, greedy, so the same prompt gets the same text.
VLLM_ITSELF = """
import json, sys, urllib.request
prompt, max_tokens, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
base = f"http://127.0.0.1:{port}"
model = json.load(urllib.request.urlopen(base + "/v1/models", timeout=30))["data"][0]["id"]
body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
request = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=120))
choice = answer["choices"][0]
print(json.dumps([choice["text"], choice["finish_reason"], answer["usage"]["prompt_tokens"],
                  answer["usage"]["completion_tokens"]]))
"""


def test_generate_and_stream_go_from_the_front_door_pod_through_the_gateway_service_to_real_vllm(
    made_up: tuple[str, Path], real_model: RealModel, kube: Kube, kubeconfig: Path
) -> None:
    """The SDK on the host, through the relay to the chart's front door pod, which reaches the
    model's gateway by its Service's DNS name; the real gateway, then real vLLM on the real node.
    The text is vLLM's own answer to the prompt, byte for byte, whole and streamed; the usage
    is vLLM's count; each request has its audit line at the front door pod and at the gateway
    (the same request id), and the usage counted (UsageReport, Tenant, the subscription the
    front door serves) is exactly what the gateway audited."""
    base_url, ca_bundle = made_up
    tenant, ns = real_model.tenant, real_model.namespace
    pod = real_model.pod(kube)["metadata"]["name"]
    done = exec_python(kubeconfig, ns, pod, VLLM_ITSELF, PROMPT, str(MAX_TOKENS),
                       str(VLLM_PORT), container="vllm")  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = tuple(json.loads(done.stdout))
    with sdk.SecureModelClient(api_key=tenant["key"], client_id=tenant["client_id"],
                               base_url=base_url, ca_bundle=ca_bundle) as client:  # fmt: skip
        client.wait_until_ready(real_model.name, timeout=120, poll_interval=0.5)
        result = client.generate(real_model.name, PROMPT, max_tokens=MAX_TOKENS, temperature=0)
        with client.generate(real_model.name, PROMPT, max_tokens=MAX_TOKENS, temperature=0,
                             stream=True) as stream:  # fmt: skip
            chunks = list(stream)
        last = chunks[-1]
        assert last.usage is not None
        streamed = ("".join(c.text for c in chunks), last.finish_reason,
                    last.usage.prompt_tokens, last.usage.completion_tokens)  # fmt: skip
        whole = (result.text, result.finish_reason, result.usage.prompt_tokens,
                 result.usage.completion_tokens)  # fmt: skip
        assert whole == streamed == expected
        assert expected[0] and expected[3] >= 1  # vLLM generated something

        # Each request audited at the gateway in the model pod, under the front door's id.
        gateway_lines = [line for line in _json_lines(_logs(kubeconfig, ns, pod, "gateway"))
                         if line.get("tenant") == tenant["name"]]  # fmt: skip
        mine = gateway_lines[-2:]
        key_id = tenant["key"].split("_")[1]
        for line in mine:
            assert (line["route"], line["status"], line["deployment"]) == (
                "/v1/completions", 200, real_model.name)  # fmt: skip
            assert (line["client_id"], line["key_id"]) == (tenant["client_id"], key_id)
            assert (line["prompt_tokens"], line["completion_tokens"]) == expected[2:]
        front = _release_pods(kube)
        # The chart runs two front doors: a request's line is in the log of the one it met.
        api_pods = [p for p in front if p["metadata"]["labels"]["app.kubernetes.io/component"] == "api"]  # fmt: skip
        assert len(api_pods) == 2, [p["metadata"]["name"] for p in api_pods]
        front_lines = {line.get("request_id"): line for pod in api_pods for line in _json_lines(
            _logs(kubeconfig, lifecycle.SYSTEM_NAMESPACE, pod["metadata"]["name"]))}  # fmt: skip
        for line in mine:
            at_front = front_lines[line["request_id"]]
            assert (at_front["status"], at_front["tenant"]) == (200, tenant["name"])

        # Counted: what the gateway audited for this tenant, all of it, in its pod's
        # UsageReport, the Tenant's status and the subscription the installed front door serves.
        audited = sum(line["prompt_tokens"] + line["completion_tokens"] for line in gateway_lines)

        def reported() -> int:
            report = kube.get("paitient.ai/v1alpha1", "UsageReport", pod, namespace=ns) or {}
            return sum(e["promptTokens"] + e["completionTokens"]
                       for e in (report.get("spec") or {}).get("entries", [])
                       if e["tenant"] == tenant["name"])  # fmt: skip

        wait_for(lambda: reported() == audited, timeout=60, what=f"{audited} tokens reported")
        wait_for(lambda: client.get_subscription().current_usage == audited, timeout=60,
                 what=f"{audited} tokens in the subscription")  # fmt: skip

    # The key the requests carried is in no log of the pods they went through.
    texts = {f"{p['metadata']['name']}/{c['name']}": _logs(kubeconfig, lifecycle.SYSTEM_NAMESPACE,
                                                              p["metadata"]["name"], c["name"])
             for p in front for c in p["spec"]["containers"]}  # fmt: skip
    texts |= {f"{pod}/{c}": _logs(kubeconfig, ns, pod, c) for c in ("gateway", "vllm")}
    assert not key_leaks.in_texts(texts, key_leaks.needles([tenant["key"]]))


def _logs(kubeconfig: Path, namespace: str, pod: str, container: str = "") -> str:
    target = ["-c", container] if container else []
    done = kubectl(kubeconfig, "-n", namespace, "logs", pod, *target)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among a log's lines, in order (pure)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found

"""Model pods on the real node: they serve, their NetworkPolicies hold (proven by traffic, not
by reading YAML), no client header reaches vLLM (read off the pod's loopback), and their
containers cannot write outside their volumes.

The session's CPU ModelDeployment whose real vLLM serves the tiny model (``real_model``), a
second one whose model would come from outside (so HTTPS egress stays open for it), a second
tenant, and probe pods in the namespaces that matter. Each probe is a TCP connection from a pod;
the table of probes, expected and observed, is printed and kept in docs/security.md. vLLM
listens on 127.0.0.1 only, so its rows show that binding, not a policy; the ingress port limit
is shown on a test-only listener on the pod's address, with the limit in force and lifted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from paitient_cli import admin
from paitient_common.kubeapi import Kube, KubeError
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY
from paitient_images import image
from paitient_localcluster.addresses import API_SERVICE_IP, DNS_SERVICE_IP
from tests.integration.forwarded_headers import client_headers, leaks
from tests.integration.loopback_capture import LoopbackCapture, pod_netns
from tests.integration.node_pods import (
    COMPLETE,
    PROBE_IMAGE,
    SLEEP,
    PodListener,
    connect,
    create_ready,
    exec_python,
    http_server,
    pod_manifest,
)
from tests.integration.real_model import RealModel, model_pod
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for
from tests.unit.operator.factories import make_md

FRONT_DOOR_NAMESPACE = "paitient-system"  # the operator's default front door namespace
GATEWAY_PORT = 8443
VLLM_PORT = 8000
MD = ("paitient.ai/v1alpha1", "ModelDeployment")
MD_LABEL = "paitient.ai/modeldeployment"


@dataclass(frozen=True)
class Probe:
    source: str  # what it is, for the table
    namespace: str
    pod: str
    container: str
    host: str
    port: int
    target: str
    expected: str  # "open" or "blocked"

    def observed(self, kubeconfig: Path) -> str:
        outcome = connect(kubeconfig, self.namespace, self.pod, self.host, self.port, 2.0,
                          container=self.container)  # fmt: skip
        return "open" if outcome == "open" else f"blocked ({outcome})"


def _namespace(kube: Kube, name: str) -> str:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@dataclass(frozen=True)
class Scene:
    probes: list[Probe]
    tenant: dict[str, str]
    front_door_pod: str
    model_pod: str
    deployment: str


@pytest.fixture(scope="module")
def scene(real_model: RealModel, kube: Kube, api_client: client.ApiClient) -> Iterator[Scene]:
    suffix = uuid.uuid4().hex[:6]
    tenant, other = real_model.tenant, make_tenant(kube)
    allowed = real_model.allowed
    outsider = _namespace(kube, f"np-outsider-{suffix}")
    namespaces = [outsider]
    probe_image = image(PROBE_IMAGE).reference
    try:
        ns = tenant["namespace"]
        kube.create(
            make_md("remote-model").namespace(ns).cpu_only().resources("300m", "6Gi")
            .allow(allowed).storage("1Gi", "encrypted-local").manifest()
        )  # fmt: skip
        for namespace, name in ((FRONT_DOOR_NAMESPACE, f"np-front-door-{suffix}"),
                                (allowed, "probe"), (outsider, "probe"),
                                (other["namespace"], "probe")):  # fmt: skip
            create_ready(kube, namespace, pod_manifest(name, probe_image, SLEEP))
        https = create_ready(kube, outsider, http_server("https", probe_image, 443))
        plain = create_ready(kube, outsider, http_server("plain", probe_image, 8080))
        other_server = create_ready(
            kube, other["namespace"], http_server("server", probe_image, 8443)
        )
        local = real_model.pod(kube)
        remote = model_pod(kube, ns, "remote-model", ready=False)
        gw, vllm = local["status"]["podIP"], local["status"]["podIP"]
        local_pod, remote_pod = local["metadata"]["name"], remote["metadata"]["name"]
        front = (FRONT_DOOR_NAMESPACE, f"np-front-door-{suffix}", "")

        def probe(source: str, at: tuple[str, str, str], host: str, port: int, target: str,
                  expected: str) -> Probe:  # fmt: skip
            return Probe(source, *at, host, port, target, expected)

        from_model = (ns, local_pod, "gateway")
        probes = [
            probe(
                "a namespace the deployment does not allow",
                (outsider, "probe", ""),
                gw,
                GATEWAY_PORT,
                "gateway :8443",
                "blocked",
            ),
            probe("the front door's namespace", front, gw, GATEWAY_PORT, "gateway :8443", "open"),
            probe(
                "a namespace the deployment allows",
                (allowed, "probe", ""),
                gw,
                GATEWAY_PORT,
                "gateway :8443",
                "open",
            ),
            probe(
                "another tenant's namespace",
                (other["namespace"], "probe", ""),
                gw,
                GATEWAY_PORT,
                "gateway :8443",
                "blocked",
            ),
            probe(
                "the front door's namespace",
                front,
                vllm,
                VLLM_PORT,
                "vLLM :8000 at the pod's address (it binds 127.0.0.1)",
                "blocked",
            ),
            probe(
                "a namespace the deployment allows",
                (allowed, "probe", ""),
                vllm,
                VLLM_PORT,
                "vLLM :8000 at the pod's address (it binds 127.0.0.1)",
                "blocked",
            ),
            probe(
                "the model pod itself (gateway container)",
                from_model,
                "127.0.0.1",
                VLLM_PORT,
                "vLLM 127.0.0.1:8000",
                "open",
            ),
            probe("the model pod", from_model, DNS_SERVICE_IP, 53, "cluster DNS :53 (TCP)", "open"),
            probe(
                "the model pod",
                from_model,
                API_SERVICE_IP,
                443,
                "API server (`kubernetes` Service)",
                "open",
            ),
            probe(
                "the model pod (weights from its PVC)",
                from_model,
                https["status"]["podIP"],
                443,
                "HTTPS :443 of a pod elsewhere",
                "blocked",
            ),
            probe(
                "the model pod (remote weights)",
                (ns, remote_pod, "gateway"),
                https["status"]["podIP"],
                443,
                "HTTPS :443 of a pod elsewhere",
                "open",
            ),
            probe(
                "the model pod",
                from_model,
                plain["status"]["podIP"],
                8080,
                ":8080 of a pod elsewhere",
                "blocked",
            ),
            probe(
                "the model pod",
                from_model,
                other_server["status"]["podIP"],
                8443,
                "another tenant's pod :8443",
                "blocked",
            ),
        ]
        yield Scene(probes, tenant, front[1], local_pod, real_model.name)
    finally:
        kube.delete(*MD, "remote-model", namespace=tenant["namespace"])
        admin.delete_tenant(kube, other["name"], force=True)
        for namespace in namespaces:
            kube.delete("v1", "Namespace", namespace)
        for pod in kube.list("v1", "Pod", namespace=FRONT_DOOR_NAMESPACE):
            if pod["metadata"]["name"] == f"np-front-door-{suffix}":
                kube.delete("v1", "Pod", pod["metadata"]["name"], namespace=FRONT_DOOR_NAMESPACE)


def test_network_policies_block_and_allow_exactly_what_the_design_says(
    scene: Scene, kubeconfig: Path
) -> None:
    rows = [(p.source, p.target, p.expected, _settled(p, kubeconfig)) for p in scene.probes]
    table = format_table(rows)
    print("\n" + table)
    assert all(observed.split()[0] == expected for _, _, expected, observed in rows), table


def _settled(probe: Probe, kubeconfig: Path) -> str:
    """What the probe observes once it is what is expected, or after 20 s: kube-router applies
    a policy change within seconds."""

    def settled() -> str | None:
        seen = probe.observed(kubeconfig)
        return seen if seen.split()[0] == probe.expected else None

    try:
        return wait_for(settled, timeout=20, interval=1, what=probe.target)
    except AssertionError:
        return probe.observed(kubeconfig)


LISTENER_PORT = 9099  # a port nothing of the product uses


def test_the_ingress_port_limit_holds_for_a_port_that_really_listens(
    scene: Scene, real_model: RealModel, kube: Kube, kubeconfig: Path
) -> None:
    """vLLM listens on 127.0.0.1, so its port is refused from outside with or without a policy:
    it cannot show the port limit. A test-only listener in the model pod's gateway container
    listens on the pod's address instead. From the front door's namespace (which the policy lets
    in, to the gateway's port only) it is blocked; with a test-only policy that lets that
    namespace in on every port, it is open and the listener sees the connection; the test policy
    removed, blocked again. vLLM's port stays refused even with the limit lifted."""
    ns = real_model.namespace
    pod = real_model.pod(kube)
    ip, name = pod["status"]["podIP"], pod["metadata"]["name"]
    front = (FRONT_DOOR_NAMESPACE, scene.front_door_pod, "")
    front_ip = (kube.get("v1", "Pod", scene.front_door_pod, namespace=FRONT_DOOR_NAMESPACE)
                or {})["status"]["podIP"]  # fmt: skip
    listener_target = f"test listener :{LISTENER_PORT} at the pod's address"

    def probe(state: str, port: int, target: str, expected: str) -> tuple[str, str, str, str]:
        p = Probe(f"the front door's namespace, {state}", *front, ip, port, target, expected)
        return p.source, p.target, p.expected, _settled(p, kubeconfig)

    lifted = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "test-lifts-the-port-limit", "namespace": ns},
        "spec": {"podSelector": {"matchLabels": {MD_LABEL: real_model.name}},
                 "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                     "kubernetes.io/metadata.name": FRONT_DOOR_NAMESPACE}}}]}]},
    }  # fmt: skip
    with PodListener(kubeconfig, ns, name, "gateway", LISTENER_PORT) as listener:
        rows = [
            probe("the deployment's policy", GATEWAY_PORT, "gateway :8443", "open"),
            probe("the deployment's policy", LISTENER_PORT, listener_target, "blocked"),
        ]
        reached_while_blocked = front_ip in listener.peers()
        kube.create(lifted)
        try:
            rows.append(probe("port limit lifted", LISTENER_PORT, listener_target, "open"))
            rows.append(probe("port limit lifted", VLLM_PORT, "vLLM :8000 at the pod's address (it binds 127.0.0.1)",
                              "blocked"))  # fmt: skip
            reached_while_lifted = front_ip in listener.peers()
        finally:
            kube.delete("networking.k8s.io/v1", "NetworkPolicy", lifted["metadata"]["name"],
                        namespace=ns)  # fmt: skip
        rows.append(probe("the deployment's policy again", LISTENER_PORT, listener_target,
                          "blocked"))  # fmt: skip
    table = format_table(rows)
    print("\n" + table)
    assert all(observed.split()[0] == expected for _, _, expected, observed in rows), table
    assert (reached_while_blocked, reached_while_lifted) == (False, True)


def test_the_model_pod_serves_through_its_gateway_by_the_services_name(
    scene: Scene, kube: Kube, kubeconfig: Path
) -> None:
    """From the front door's namespace, as the front door does: the Service's cluster DNS name,
    TLS verified against the operator's CA, the tenant's key; real vLLM behind the gateway."""
    bundle = kube.get("v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=FRONT_DOOR_NAMESPACE)
    assert bundle is not None
    ns = scene.tenant["namespace"]
    url = f"https://{scene.deployment}.{ns}.svc.cluster.local:{GATEWAY_PORT}/v1/completions"
    done = exec_python(
        kubeconfig, FRONT_DOOR_NAMESPACE, scene.front_door_pod, COMPLETE, url,
        scene.tenant["key"], scene.tenant["client_id"], bundle["data"][CA_BUNDLE_KEY],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status, tokens, finish = done.stdout.split()
    assert status == "200" and int(tokens) >= 1 and finish in ("length", "stop")


# A request with the given headers through a gateway, TLS verified against the given CA; prints
# the status.
SEND = """
import json, ssl, sys, urllib.request
url, ca, headers, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4].encode()
request = urllib.request.Request(url, data=body, headers={**headers, "Content-Type": "application/json"})
with urllib.request.urlopen(request, context=ssl.create_default_context(cadata=ca), timeout=120) as r:
    r.read()
    print(r.status)
"""


def test_no_client_header_reaches_real_vllm(
    scene: Scene, real_model: RealModel, kube: Kube, kubeconfig: Path
) -> None:
    """What real vLLM receives, read off the pod's loopback (the gateway's hop to vLLM's port,
    captured inside the pod's network namespace, tests/integration/loopback_capture.py) while a
    completion and a chat stream are sent to the gateway's Service with the key, the client ID,
    cookies, proxy, tracing and custom headers: none of them, nor their values, reaches vLLM."""
    ns, tenant = real_model.namespace, real_model.tenant
    pod = real_model.pod(kube)["metadata"]["name"]
    bundle = kube.get("v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=FRONT_DOOR_NAMESPACE)
    assert bundle is not None
    sent = client_headers(tenant["key"], tenant["client_id"])
    marker = f"marker{uuid.uuid4().hex[:10]}"
    base = f"https://{real_model.name}.{ns}.svc.cluster.local:{GATEWAY_PORT}"
    requests = [
        ("/v1/completions", {"prompt": f"{marker} completion", "max_tokens": 2}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": f"{marker} chat"}],
                                  "max_tokens": 2, "stream": True}),
    ]  # fmt: skip
    with LoopbackCapture(pod_netns(kubeconfig, ns, pod, "gateway"), VLLM_PORT) as capture:
        for path, body in requests:
            done = exec_python(kubeconfig, FRONT_DOOR_NAMESPACE, scene.front_door_pod, SEND,
                               base + path, bundle["data"][CA_BUNDLE_KEY], json.dumps(sent),
                               json.dumps(body))  # fmt: skip
            assert (done.returncode, done.stdout.strip()) == (0, "200"), done.stderr
        ours = wait_for(
            lambda: (
                len(found := [r for r in capture.requests() if marker.encode() in r.body]) == 2
                and found
            ),
            what="both requests on vLLM's port",
        )
    assert sorted(r.request_line for r in ours) == [
        "POST /v1/chat/completions HTTP/1.1", "POST /v1/completions HTTP/1.1"]  # fmt: skip
    leaked = [
        (r.request_line, found) for r in capture.requests() if (found := leaks(r.headers, sent))
    ]
    assert not leaked, leaked
    secret = tenant["key"].split("_", 2)[2].encode()
    assert not any(secret in r.body for r in capture.requests())


IDENTITY_AND_WRITES = """
import os, pathlib, sys
status = dict(l.split(":", 1) for l in pathlib.Path("/proc/self/status").read_text().splitlines())
print(os.getuid(), os.getgid(), status["CapEff"].strip(), status["NoNewPrivs"].strip())
for directory in sys.argv[1:]:
    try:
        (pathlib.Path(directory) / "paitient-write-probe").write_text("x")
        print(directory, "written")
    except OSError:
        print(directory, "refused")
"""


@pytest.mark.parametrize(
    ("container", "writable"),
    [("gateway", ["/tmp"]), ("vllm", ["/tmp", "/dev/shm", "/models/cache"])],
)
def test_model_containers_run_as_declared_and_write_only_to_their_volumes(
    scene: Scene, kube: Kube, kubeconfig: Path, container: str, writable: list[str]
) -> None:
    ns = scene.tenant["namespace"]
    labels = (kube.get("v1", "Namespace", ns) or {})["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = kube.get("v1", "Pod", scene.model_pod, namespace=ns) or {}
    security = pod["spec"]["securityContext"]
    places = ["/", "/usr", "/etc", "/models/source", *writable]
    done = exec_python(kubeconfig, ns, scene.model_pod, IDENTITY_AND_WRITES, *places,
                       container=container)  # fmt: skip
    assert done.returncode == 0, done.stderr
    uid, gid, caps, nnp = done.stdout.splitlines()[0].split()
    assert (int(uid), int(gid)) == (security["runAsUser"], security["runAsGroup"])
    assert (caps, nnp) == ("0000000000000000", "1")
    outcome = dict(line.split() for line in done.stdout.splitlines()[1:])
    assert outcome == {p: "written" if p in writable else "refused" for p in places}, outcome


# One relaxation each of what the operator's model pod declares; Pod Security names the field.
RELAXED: list[tuple[str, dict[str, Any], str]] = [
    ("root", {"runAsUser": 0}, "runAsUser=0"),
    ("escalation", {"allowPrivilegeEscalation": True}, "allowPrivilegeEscalation != false"),
    ("capability", {"capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}}, "unrestricted capabilities"),
    ("privileged", {"privileged": True, "allowPrivilegeEscalation": True}, "privileged"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "relax", "named"), RELAXED, ids=[r[0] for r in RELAXED])
def test_the_tenant_namespace_refuses_the_model_pod_with_one_protection_relaxed(
    scene: Scene, kube: Kube, what: str, relax: dict[str, Any], named: str
) -> None:
    """The operator's own pod, as running, with one field changed: the API server's Pod Security
    admission (``restricted``, enforced on the tenant's namespace) refuses it (a dry run)."""
    ns = scene.tenant["namespace"]
    running = kube.get("v1", "Pod", scene.model_pod, namespace=ns) or {}
    spec = running["spec"]
    gateway = next(c for c in spec["containers"] if c["name"] == "gateway")
    gateway["securityContext"] = {**gateway.get("securityContext", {}), **relax}
    spec.pop("nodeName", None)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"relaxed-{what}", "namespace": ns},
        "spec": spec,
    }
    with pytest.raises(KubeError) as refused:
        kube.request("POST", f"/api/v1/namespaces/{ns}/pods", body=pod, query={"dryRun": "All"})
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in refused.value.message
    assert named in refused.value.message, refused.value.message


def format_table(rows: list[tuple[str, str, str, str]]) -> str:
    """The probes as a Markdown table (pure)."""
    lines = ["| from | to | expected | observed |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)

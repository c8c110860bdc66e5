"""The local cluster's real node: a kubelet (not KWOK) the API server reaches; pods that really
run under Pod Security ``restricted``; Services, cluster DNS and NetworkPolicies proven by
traffic from pods."""

from __future__ import annotations

import json
import os
import secrets
import socket
import ssl
import struct
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paitient_common.kubeapi import Kube
from paitient_images import image
from paitient_localcluster.addresses import API_SERVICE_IP, DNS_SERVICE_IP, NODE_IP
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.controlplane.pki import NODE_NAME
from paitient_localcluster.host.linux import call_in_netns
from paitient_localcluster.host.processes import free_port, wait_http_ok
from paitient_localcluster.upstream.versions import KUBERNETES_VERSION
from tests.integration.node_pods import (
    KUBECTL,
    PROBE_IMAGE,
    SLEEP,
    connect,
    create_ready,
    exec_python,
    http_server,
    kubectl,
    pod_manifest,
)
from tests.integration.waiting import wait_for
from tests.prerequisites import missing


@pytest.fixture(scope="module")
def local_cluster(kubeconfig: Path) -> Iterator[LocalCluster]:
    """The session's local cluster (these tests look inside its namespace)."""
    if os.environ.get("PAITIENT_TEST_KUBECONFIG"):
        missing("looks inside the local cluster's namespaces (PAITIENT_TEST_KUBECONFIG is set)")
    cluster = LocalCluster(log=lambda _m: None)
    assert cluster.kubeconfig == kubeconfig
    yield cluster


@pytest.fixture(scope="module")
def node(kube: Kube, local_cluster: LocalCluster) -> dict[str, Any]:
    found = kube.get("v1", "Node", NODE_NAME)
    assert found is not None, f"no node {NODE_NAME}"
    return found


def test_the_cpu_node_is_a_real_kubelet_on_containerd_not_a_simulated_one(
    node: dict[str, Any],
) -> None:
    meta, status = node["metadata"], node["status"]
    assert "kwok.x-k8s.io/node" not in meta.get("annotations", {}), "KWOK must not manage it"
    assert meta["labels"]["paitient.ai/simulated"] == "false"
    assert meta["labels"]["kubernetes.io/os"] == "linux"
    assert status["nodeInfo"]["kubeletVersion"] == KUBERNETES_VERSION
    assert status["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.6.")
    assert {"type": "InternalIP", "address": NODE_IP} in status["addresses"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    assert "nvidia.com/gpu" not in status["capacity"]
    assert not node["spec"].get("taints"), "it takes the product's CPU pods"


def test_the_api_server_reaches_the_kubelet_and_verifies_its_certificate(
    local_cluster: LocalCluster, node: dict[str, Any]
) -> None:
    """The path `kubectl logs/exec/port-forward` take: API server -> kubelet at its InternalIP,
    the kubelet's serving certificate checked against the cluster CA."""
    proxy = f"{local_cluster.server}/api/v1/nodes/{NODE_NAME}/proxy"
    context = _admin_context(local_cluster)
    with urllib.request.urlopen(f"{proxy}/healthz", context=context, timeout=10) as resp:
        assert resp.read() == b"ok"
    with urllib.request.urlopen(f"{proxy}/configz", context=context, timeout=10) as resp:
        configz = json.loads(resp.read())["kubeletconfig"]
    assert configz["cgroupDriver"] == "cgroupfs"
    assert configz["protectKernelDefaults"] is True
    assert configz["clusterDNS"] == [DNS_SERVICE_IP]


def _admin_context(cluster: LocalCluster) -> ssl.SSLContext:
    pki = cluster.layout.pki
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.client_cert("admin")), str(pki.client_key("admin")))
    return context


def test_the_kubernetes_service_leads_to_the_api_server_inside_the_namespace(
    local_cluster: LocalCluster,
) -> None:
    """What a pod does: connect to the `kubernetes` Service's address (kube-proxy turns it into
    the API server's advertised address) and verify the certificate by its in-cluster name."""
    context = _admin_context(local_cluster)

    def readyz() -> str:
        with (
            socket.create_connection((API_SERVICE_IP, 443), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="kubernetes.default.svc.cluster.local") as tls,
        ):
            tls.sendall(b"GET /readyz HTTP/1.0\r\nHost: kubernetes\r\n\r\n")
            return b"".join(iter(lambda: tls.recv(4096), b"")).decode()

    answer = call_in_netns(local_cluster.namespaces.netns_path, readyz)
    assert answer.startswith("HTTP/1.0 200") and answer.endswith("ok")


def test_cluster_dns_answers_service_names_through_the_kube_dns_service(
    local_cluster: LocalCluster,
) -> None:
    def resolve(name: str) -> tuple[int, list[str]]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(dns_query(name), (DNS_SERVICE_IP, 53))
            return dns_answers(sock.recv(4096))

    netns = local_cluster.namespaces.netns_path
    rcode, addresses = call_in_netns(netns, lambda: resolve("kubernetes.default.svc.cluster.local"))
    assert (rcode, addresses) == (0, [API_SERVICE_IP])
    rcode, addresses = call_in_netns(
        netns, lambda: resolve("kube-dns.kube-system.svc.cluster.local")
    )
    assert (rcode, addresses) == (0, [DNS_SERVICE_IP])
    rcode, addresses = call_in_netns(netns, lambda: resolve("nothing.default.svc.cluster.local"))
    assert (rcode, addresses) == (3, [])  # NXDOMAIN


@pytest.fixture(scope="module")
def probe_image() -> str:
    return image(PROBE_IMAGE).reference


@pytest.fixture
def restricted(kube: Kube, namespace: str) -> str:
    """The test namespace, enforcing Pod Security `restricted` as the product's do."""
    kube.patch("v1", "Namespace", namespace,
               {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})  # fmt: skip
    return namespace


def test_a_restricted_pod_really_runs_with_its_uid_and_a_read_only_root(
    kube: Kube, kubeconfig: Path, restricted: str, probe_image: str
) -> None:
    pod = create_ready(kube, restricted, pod_manifest("runs", probe_image, SLEEP))
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["status"]["podIP"].startswith("10.244.0.")
    code = """
import os, pathlib
print(os.getuid(), os.getgid())
status = pathlib.Path("/proc/self/status").read_text()
print([l.split()[1] for l in status.splitlines() if l.startswith(("CapEff", "NoNewPrivs", "Seccomp:"))])
for target in ("/x", "/usr/x", "/tmp/x"):
    try:
        pathlib.Path(target).write_text("x")
        print(target, "written")
    except OSError as exc:
        print(target, exc.strerror)
"""
    done = exec_python(kubeconfig, restricted, "runs", code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "65532 65532", "the image's declared user"
    assert lines[1] == "['0000000000000000', '1', '2']", "no capability, no new privileges, seccomp"
    assert lines[2:] == [
        "/x Read-only file system",
        "/usr/x Read-only file system",
        "/tmp/x written",
    ]
    logs = kubectl(kubeconfig, "-n", restricted, "logs", "runs")
    assert logs.returncode == 0, logs.stderr


def test_services_and_cluster_dns_work_from_a_pod(
    kube: Kube, kubeconfig: Path, restricted: str, probe_image: str
) -> None:
    create_ready(kube, restricted, http_server("web", probe_image, 8080))
    kube.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": restricted},
                 "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})  # fmt: skip
    create_ready(kube, restricted, pod_manifest("client", probe_image, SLEEP))
    name = f"web.{restricted}.svc.cluster.local"
    fetch = """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
"""
    done = wait_for(
        lambda: (d := exec_python(kubeconfig, restricted, "client", fetch, f"http://{name}/"))
        .returncode == 0 and d,
        timeout=30, what="the Service by its DNS name",
    )  # fmt: skip
    assert done.stdout.strip() == "200"
    # The API server through the `kubernetes` Service, its certificate checked by that name.
    api = """
import ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
ctx = ssl.create_default_context(cafile=f"{sa}/ca.crt")
req = urllib.request.Request("https://kubernetes.default.svc/api",
                             headers={"Authorization": "Bearer " + open(f"{sa}/token").read()})
print(urllib.request.urlopen(req, context=ctx, timeout=5).status)
"""
    done = exec_python(kubeconfig, restricted, "client", api)
    assert (done.returncode, done.stdout.strip()) == (0, "200"), done.stderr


def test_a_network_policy_blocks_traffic_and_lifting_it_restores_it(
    kube: Kube, kubeconfig: Path, restricted: str, probe_image: str
) -> None:
    server = create_ready(kube, restricted, http_server("guarded", probe_image, 8080))
    create_ready(kube, restricted, pod_manifest("visitor", probe_image, SLEEP))
    ip = server["status"]["podIP"]
    assert connect(kubeconfig, restricted, "visitor", ip, 8080) == "open"
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "deny-guarded", "namespace": restricted},
              "spec": {"podSelector": {"matchLabels": {"app": "guarded"}}, "policyTypes": ["Ingress"]}}  # fmt: skip
    kube.create(policy)
    wait_for(lambda: connect(kubeconfig, restricted, "visitor", ip, 8080, 1) != "open",
             timeout=30, what="the policy to block")  # fmt: skip
    kube.delete("networking.k8s.io/v1", "NetworkPolicy", "deny-guarded", namespace=restricted)
    wait_for(lambda: connect(kubeconfig, restricted, "visitor", ip, 8080, 1) == "open",
             timeout=30, what="traffic back once the policy is gone")  # fmt: skip


def test_port_forward_reaches_a_pod_from_the_host(
    kube: Kube, kubeconfig: Path, restricted: str, probe_image: str
) -> None:
    create_ready(kube, restricted, http_server("forwarded", probe_image, 8080))
    port = free_port()
    forward = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "-n", restricted, "port-forward",
         "pod/forwarded", f"{port}:8080"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert wait_http_ok(f"http://127.0.0.1:{port}/", 30), "port-forward from host loopback"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def dns_query(name: str) -> bytes:
    """A DNS query for the A records of ``name`` (RFC 1035, recursion desired)."""
    header = struct.pack("!HHHHHH", secrets.randbelow(65536), 0x0100, 1, 0, 0, 0)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    return header + question + b"\0" + struct.pack("!HH", 1, 1)


def dns_answers(reply: bytes) -> tuple[int, list[str]]:
    """(response code, A-record addresses) of a reply to ``dns_query``."""
    flags, questions, answers = struct.unpack("!HHH", reply[2:8])
    offset = 12
    for _ in range(questions):
        while reply[offset] != 0:
            offset += reply[offset] + 1
        offset += 5  # the root label, type, class
    found = []
    for _ in range(answers):
        offset += 2 if reply[offset] & 0xC0 == 0xC0 else reply.index(b"\0", offset) + 1 - offset
        rtype, _class, _ttl, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == 1:
            found.append(socket.inet_ntoa(reply[offset : offset + length]))
        offset += length
    return flags & 0x000F, found

"""Pods on the real node for tests that need traffic: probe pods from a product image (the
gateway's: Python, no shell), run under Pod Security ``restricted``, and ``kubectl exec`` of a
Python snippet inside them."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

from paitient_common.kubeapi import Kube
from paitient_localcluster.controlplane.pki import NODE_NAME
from paitient_localcluster.stack.tiny_model import RESTRICTED
from tests.integration.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".local" / "bin" / "kubectl"
PROBE_IMAGE = "paitient-gateway"  # in the images index: a Python image every node holds

# A connection attempt as a probe prints it: "open", "refused", "timeout" or the error's name.
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("open")
except ConnectionRefusedError:
    print("refused")
except (TimeoutError, socket.timeout):
    print("timeout")
except OSError as exc:
    print(type(exc).__name__)
"""
SLEEP = ["python3", "-c", "import time; time.sleep(10**8)"]


def pod_manifest(
    name: str,
    image: str,
    command: list[str],
    labels: dict[str, str] | None = None,
    port: int | None = None,
) -> dict[str, Any]:
    """A pod that passes Pod Security ``restricted``, on the real node, with a memory-backed
    /tmp (its only writable place)."""
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
    }
    if port is not None:
        container["ports"] = [{"containerPort": port}]
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory"}}],
        },
    }


def http_server(
    name: str, image: str, port: int, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    command = ["python3", "-m", "http.server", str(port), "--directory", "/tmp"]
    return pod_manifest(name, image, command, labels, port)


def create_ready(kube: Kube, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create the pod and wait until it is Ready; the pod as it is then."""
    name = manifest["metadata"]["name"]
    kube.create({**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}})

    def ready() -> dict[str, Any] | None:
        pod = kube.get("v1", "Pod", name, namespace=namespace) or {}
        conditions = (pod.get("status") or {}).get("conditions") or []
        return (
            pod if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None
        )

    return wait_for(ready, timeout=60, what=f"pod {namespace}/{name} Ready")


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def exec_python(
    kubeconfig: Path, namespace: str, pod: str, code: str, *args: str, container: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``python3 -c code args...`` in the pod (the product images have no shell)."""
    target = ["-c", container] if container else []
    return kubectl(
        kubeconfig, "-n", namespace, "exec", pod, *target, "--", "python3", "-c", code, *args
    )


def connect(
    kubeconfig: Path,
    namespace: str,
    pod: str,
    host: str,
    port: int,
    timeout: float = 3.0,
    container: str = "",
) -> str:
    """What a TCP connection from the pod to host:port gives: "open", "refused", "timeout", ..."""
    done = exec_python(kubeconfig, namespace, pod, CONNECT, host, str(port), str(timeout),
                       container=container)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# A completion through a gateway, TLS verified against the given CA: "<status> <completion tokens>
# <finish reason>".
COMPLETE = """
import json, ssl, sys, urllib.request
url, key, client_id, ca = sys.argv[1:5]
context = ssl.create_default_context(cadata=ca)
body = json.dumps({"model": "local-model", "prompt": "Hello", "max_tokens": 4}).encode()
request = urllib.request.Request(url, data=body, headers={
    "Authorization": f"Bearer {key}", "X-Client-ID": client_id, "Content-Type": "application/json"})
with urllib.request.urlopen(request, context=context, timeout=60) as resp:
    answer = json.loads(resp.read())
print(resp.status, answer["usage"]["completion_tokens"], answer["choices"][0]["finish_reason"])
"""


# A TCP listener on every address of the pod, for as long as the ``kubectl exec`` that started it
# runs: it prints each peer that connects, and exits when its stdin closes (or after an hour).
LISTEN = """
import os, socket, sys, threading
server = socket.create_server(("0.0.0.0", int(sys.argv[1])))
print("listening", flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
threading.Timer(3600, os._exit, (0,)).start()
while True:
    connection, peer = server.accept()
    print(peer[0], flush=True)
    connection.close()
"""


class PodListener:
    """A test-only listener in a running pod's container (``with``): a port that really listens
    on the pod's address, to prove what a NetworkPolicy lets through to it."""

    def __init__(
        self, kubeconfig: Path, namespace: str, pod: str, container: str, port: int
    ) -> None:
        self.argv = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "-n", namespace, "exec",
                     "-i", pod, "-c", container, "--", "python3", "-c", LISTEN, str(port)]  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None
        self._peers: list[str] = []
        self._reader: threading.Thread | None = None

    def __enter__(self) -> PodListener:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        assert first == "listening", (
            f"{first} {self.proc.stderr.read() if self.proc.stderr else ''}"
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._peers.append(line.strip())

    def peers(self) -> list[str]:
        """The addresses that connected so far."""
        return list(self._peers)

    def __exit__(self, *_: object) -> None:
        assert self.proc is not None
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the listener exits on its stdin's end
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

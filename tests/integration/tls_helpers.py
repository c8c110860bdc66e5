"""What the TLS tests share: a model's gateway reached as the front door reaches it, the
certificate it presents, and bounded load that must see no failure while certificates change."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509 as cx509

from tests.integration.frontdoor_process import ApiProcess
from tests.integration.gateway_tls import Gateway

MD = ("paitient.ai/v1alpha1", "ModelDeployment")


def routes_of(stack: ApiProcess) -> Path:
    return Path(stack.gateway_url.removeprefix("file:"))


def model_deployment(name: str, namespace: str) -> dict[str, Any]:
    """A GPU ModelDeployment on a simulated node: the local data plane runs its gateway."""
    return {
        "apiVersion": "paitient.ai/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"}, "useGpu": True, "gpu": {"count": 1},
                 "storage": {"size": "5Gi", "storageClassName": "encrypted-local"}},
    }  # fmt: skip


def headers(tenant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}


def completion(gw: Gateway, tenant: dict[str, str]) -> int:
    body = {"model": "x", "prompt": "hello", "max_tokens": 2}
    return gw.call("POST", "/v1/completions", body, headers(tenant))[0]


def served_certificate(gw: Gateway) -> cx509.Certificate:
    with (
        socket.create_connection(gw.address, timeout=10) as raw,
        gw.context.wrap_socket(raw, server_hostname=gw.server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return cx509.load_der_x509_certificate(der)


@dataclass
class Load:
    """Bounded load on a gateway from two threads, each at most ``rate`` requests a second
    (the tier's rate limit stays far away) and ``limit`` in all: one opening a connection (and
    handshake) per request, one keeping a single connection open across renewals. Every
    handshake verifies the certificate's dates and chain: a certificate served expired, or by a
    CA no longer trusted, is a failure here."""

    gw: Gateway
    tenant: dict[str, str]
    limit: int = 3000
    rate: float = 20.0
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _paced(self) -> Iterator[None]:
        due = time.monotonic()
        for _ in range(self.limit):
            if self.stop.wait(max(0.0, due - time.monotonic())):
                return
            due += 1 / self.rate
            yield

    def _fresh(self) -> None:
        for _ in self._paced():
            try:
                self.statuses.append(completion(self.gw, self.tenant))
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"fresh: {type(exc).__name__}: {exc}")

    def _kept(self) -> None:
        host, port = self.gw.address
        raw = socket.create_connection((host, port), timeout=30)
        conn = http.client.HTTPSConnection(host, port, timeout=30, context=self.gw.context)
        conn.sock = self.gw.context.wrap_socket(raw, server_hostname=self.gw.server_name)
        body = json.dumps({"model": "x", "prompt": "hello", "max_tokens": 2})
        sent = {"Content-Type": "application/json", **headers(self.tenant)}
        try:
            for _ in self._paced():
                try:
                    conn.request("POST", "/v1/completions", body, sent)
                    response = conn.getresponse()
                    response.read()
                    self.statuses.append(response.status)
                except (OSError, http.client.HTTPException) as exc:
                    self.failures.append(f"kept: {type(exc).__name__}: {exc}")
                    return
        finally:
            conn.close()

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._fresh), threading.Thread(target=self._kept)]
        for thread in threads:
            thread.start()
        return threads
